#pragma once
/// @file
/// How a trainer is launched (every executor, every tool):
///   <trainer command> --model_dir=<dir> --model_spec=<dir>/MODEL_SPEC.json --seed=<n>
///                     [--resume_from=<previous trial dir>] [--<proxy arg>=<value> ...]
/// with the same values in the environment: PROXYTASK_MODEL_DIR, PROXYTASK_MODEL_SPEC,
/// PROXYTASK_SEED, PROXYTASK_RESUME_FROM and PROXYTASK_PROXY_ARGS (a JSON object of proxy-arg
/// name -> string value). The trainer side parses them (parse_launch); the controller side builds
/// them (make_launch_command).

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/files.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxytask::protocol {

/// What a trainer is launched with.
struct launch_arguments {
  std::filesystem::path model_dir;   ///< the trial's directory (required)
  std::filesystem::path model_spec;  ///< default: model_dir / MODEL_SPEC.json
  std::uint64_t seed = 0;
  std::optional<std::filesystem::path> resume_from;  ///< a previous trial's directory
  /// Every other --name=value: the proxy task's arguments, values kept as strings.
  std::map<std::string, std::string, std::less<>> proxy_args;

  bool operator==(launch_arguments const&) const = default;
};

/// The value of an environment variable, or nullopt when it is unset.
using env_lookup = std::function<std::optional<std::string>(std::string const& name)>;

/// The process's environment (getenv).
inline std::optional<std::string> process_environment(std::string const& name) {
  if (char const* v = std::getenv(name.c_str())) return std::string(v);
  return std::nullopt;
}

/// A proxy argument's text as a number (an integer type or a double): the whole text must be one
/// number in from_chars' syntax, else nullopt. For trainers reading their knobs.
template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

namespace detail {

inline error launch_error(std::string what) {
  return make_error(errc::invalid_argument, std::move(what));
}

inline result<std::uint64_t> parse_seed(std::string_view text, std::string_view where) {
  auto const seed = parse_number<std::uint64_t>(text);
  if (!seed)
    return launch_error(std::string(where) + "=" + std::string(text) +
                        ": expected a non-negative integer");
  return *seed;
}

/// The four names that are not proxy arguments.
constexpr bool is_launch_flag(std::string_view name) noexcept {
  return name == "model_dir" || name == "model_spec" || name == "seed" || name == "resume_from";
}

}  // namespace detail

/// Parses a trainer's command line and environment. Flags win over the environment; an empty
/// environment variable counts as unset. Any --name=value that is not one of the four launch
/// flags is a proxy argument (its value kept as a string); a proxy argument in both
/// PROXYTASK_PROXY_ARGS and the command line takes the command line's value.
/// @param[in] argc, argv main's arguments (argv[0], the program, is skipped)
/// @param[in] env        the environment (default: the process's)
/// @returns the arguments, or errc::invalid_argument naming the offending argument or variable:
///          no model_dir, a flag that is not --name=value, one given twice, a seed that is not
///          a non-negative integer, or a PROXYTASK_PROXY_ARGS that is not a JSON object of strings
inline result<launch_arguments> parse_launch(int argc, char const* const* argv,
                                             env_lookup const& env = process_environment) {
  auto const from_env = [&](std::string const& name) -> std::optional<std::string> {
    auto v = env(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  };

  launch_arguments out;
  if (auto const args = from_env("PROXYTASK_PROXY_ARGS")) {
    auto const doc = parse_json(*args, "PROXYTASK_PROXY_ARGS");
    if (!doc) return detail::launch_error(doc.error().context);
    json_location const where("PROXYTASK_PROXY_ARGS");
    auto const o = read_json_object(*doc, where);
    if (!o) return detail::launch_error(o.error().context);
    for (auto const& [name, value] : **o) {
      auto const s = read_json_string(value, where / name);
      if (!s) return detail::launch_error(s.error().context);
      out.proxy_args.insert_or_assign(std::string(name), *s);
    }
  }

  std::optional<std::string> model_dir, model_spec, seed, resume_from;
  std::map<std::string, std::string, std::less<>> flag_args;
  for (int i = 1; i < argc; ++i) {
    std::string_view const arg = argv[i];
    auto const eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string_view::npos || eq == 2)
      return detail::launch_error("malformed argument '" + std::string(arg) +
                                  "' (expected --name=value)");
    std::string const name(arg.substr(2, eq - 2));
    std::string value(arg.substr(eq + 1));
    std::optional<std::string>* launch_flag = name == "model_dir"     ? &model_dir
                                              : name == "model_spec"  ? &model_spec
                                              : name == "seed"        ? &seed
                                              : name == "resume_from" ? &resume_from
                                                                      : nullptr;
    bool const repeated = launch_flag ? launch_flag->has_value() : flag_args.contains(name);
    if (repeated) return detail::launch_error("--" + name + " given twice");
    if (launch_flag)
      *launch_flag = std::move(value);
    else
      flag_args.emplace(name, std::move(value));
  }
  for (auto& [name, value] : flag_args) out.proxy_args.insert_or_assign(name, std::move(value));

  if (!model_dir) model_dir = from_env("PROXYTASK_MODEL_DIR");
  if (!model_dir || model_dir->empty())
    return detail::launch_error("--model_dir (or PROXYTASK_MODEL_DIR) is required");
  out.model_dir = *model_dir;

  if (!model_spec) model_spec = from_env("PROXYTASK_MODEL_SPEC");
  out.model_spec = model_spec && !model_spec->empty() ? std::filesystem::path(*model_spec)
                                                      : out.model_dir / model_spec_file_name;

  if (seed) {
    auto const s = detail::parse_seed(*seed, "--seed");
    if (!s) return s.error();
    out.seed = *s;
  } else if (auto const s_env = from_env("PROXYTASK_SEED")) {
    auto const s = detail::parse_seed(*s_env, "PROXYTASK_SEED");
    if (!s) return s.error();
    out.seed = *s;
  }

  if (!resume_from) resume_from = from_env("PROXYTASK_RESUME_FROM");
  if (resume_from && !resume_from->empty()) out.resume_from = *resume_from;
  return out;
}

/// A trainer's command line and the environment variables to add to the controller's.
struct launch_command {
  std::vector<std::string> argv;                   ///< the trainer command, then the flags
  std::map<std::string, std::string> environment;  ///< the PROXYTASK_* variables
};

/// Builds the command line and environment that give a trainer `args` (the controller side of
/// parse_launch: parse_launch of the result gives `args` back, with model_spec filled in).
/// @param[in] trainer_command the program and its own leading arguments (not empty)
/// @param[in] args            model_dir must not be empty; an empty model_spec means
///                            model_dir / MODEL_SPEC.json
/// @returns the command, or errc::invalid_argument for an empty command or model_dir, or a
///          proxy argument whose name is empty, contains '=' or is one of the four launch flags
inline result<launch_command> make_launch_command(std::span<std::string const> trainer_command,
                                                  launch_arguments const& args) {
  if (trainer_command.empty()) return detail::launch_error("the trainer command is empty");
  if (args.model_dir.empty()) return detail::launch_error("model_dir is empty");
  std::filesystem::path const spec =
      args.model_spec.empty() ? args.model_dir / model_spec_file_name : args.model_spec;

  launch_command out;
  out.argv.assign(trainer_command.begin(), trainer_command.end());
  out.argv.push_back("--model_dir=" + args.model_dir.string());
  out.argv.push_back("--model_spec=" + spec.string());
  out.argv.push_back("--seed=" + std::to_string(args.seed));
  out.environment["PROXYTASK_MODEL_DIR"] = args.model_dir.string();
  out.environment["PROXYTASK_MODEL_SPEC"] = spec.string();
  out.environment["PROXYTASK_SEED"] = std::to_string(args.seed);
  if (args.resume_from) {
    if (args.resume_from->empty()) return detail::launch_error("resume_from is empty");
    out.argv.push_back("--resume_from=" + args.resume_from->string());
    out.environment["PROXYTASK_RESUME_FROM"] = args.resume_from->string();
  }
  boost::json::object proxy_args;
  for (auto const& [name, value] : args.proxy_args) {
    if (name.empty() || name.find('=') != std::string::npos || detail::is_launch_flag(name))
      return detail::launch_error("proxy argument name '" + name +
                                  "' is empty, contains '=' or is a launch flag");
    out.argv.push_back("--" + name + "=" + value);
    proxy_args[name] = value;
  }
  out.environment["PROXYTASK_PROXY_ARGS"] = boost::json::serialize(proxy_args);
  return out;
}

}  // namespace proxytask::protocol
