#include "framework/config/emit.h"

#include <cctype>
#include <cmath>

namespace blocks::config {

namespace {

bool plain_safe(const std::string& s) {
  static const char* reserved[] = {"true", "false", "null", "yes",  "no",   "on",    "off",
                                   "True", "False", "Null", "NULL", "TRUE", "FALSE", "Yes",
                                   "No",   "On",    "Off",  "y",    "n",    "Y",     "N"};
  if (s.empty()) return false;
  for (const char* r : reserved)
    if (s == r) return false;
  const auto c0 = static_cast<unsigned char>(s[0]);
  if (!(std::isalpha(c0) || s[0] == '_' || s[0] == '/')) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '_' || c == '.' || c == '/' || c == '-' || c == '<' || c == '>'))
      return false;
  }
  return true;
}

bool integer_key(const std::string& s) {
  size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

std::string scalar(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    // YAML 1.1 readers (PyYAML) need a dot in floats: 1e-05 would read as a string.
    std::string s = format_number(v.get<double>());
    const size_t e = s.find('e');
    if (s.find_first_of(".n") == std::string::npos)
      s.insert(e == std::string::npos ? s.size() : e, ".0");
    return s;
  }
  const auto& s = v.get_ref<const std::string&>();
  return plain_safe(s) ? s : v.dump();  // JSON strings are valid double-quoted YAML
}

bool is_flow_list(const Json& v) {
  if (!v.is_array()) return false;
  for (const auto& x : v)
    if (x.is_structured()) return false;
  return true;
}

std::string flow_list(const Json& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + scalar(v[i]);
  return out + "]";
}

void write(const Json& v, int indent, std::string& out);

void write_key(const std::string& key, const Json& v, int indent, std::string& out) {
  out.append(static_cast<size_t>(indent), ' ');
  out += (plain_safe(key) || integer_key(key)) ? key : Json(key).dump();
  out += ":";
  const bool block =
      (v.is_object() && !v.empty()) || (v.is_array() && !v.empty() && !is_flow_list(v));
  if (block) {
    out += "\n";
    write(v, indent + 2, out);
  } else if (v.is_object()) {
    out += " {}\n";
  } else if (v.is_array()) {
    out += " " + flow_list(v) + "\n";
  } else {
    out += " " + scalar(v) + "\n";
  }
}

void write(const Json& v, int indent, std::string& out) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.items()) write_key(k, x, indent, out);
  } else if (v.is_array()) {
    for (const auto& x : v) {
      out.append(static_cast<size_t>(indent), ' ');
      out += "-";
      if (x.is_object() && !x.empty()) {
        // First key on the dash line, the rest aligned under it.
        std::string inner;
        write(x, indent + 2, inner);
        out += inner.substr(static_cast<size_t>(indent) + 1);
      } else if (x.is_array() && !x.empty() && !is_flow_list(x)) {
        out += "\n";
        write(x, indent + 2, out);
      } else {
        out += " " + (x.is_array() ? flow_list(x) : x.is_object() ? "{}" : scalar(x)) + "\n";
      }
    }
  } else {
    out.append(static_cast<size_t>(indent), ' ');
    out += scalar(v) + "\n";
  }
}

}  // namespace

std::string to_yaml(const Json& value) {
  std::string out;
  write(value, 0, out);
  return out;
}

std::string to_json(const Json& value) { return value.dump(2) + "\n"; }

}  // namespace blocks::config
