// Boost.JSON compiled from its headers (PROXYTASK_BOOST_JSON_FROM_HEADERS): for machines that
// have Boost's headers but not the libboost-json library.
#include <boost/json/src.hpp>
