#include "support/model_eval.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>

#include "bitnet/session.h"
#include "support/test_paths.h"

namespace bitnet::test {

using nlohmann::json;

Stats compare(const std::vector<double>& a, const std::vector<double>& b) {
    Stats s;
    EXPECT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        const double d = std::fabs(a[i] - b[i]);
        s.mean += d;
        s.max = std::max(s.max, d);
    }
    if (!a.empty()) s.mean /= static_cast<double>(a.size());
    return s;
}

std::vector<double> our_logprobs(const std::string& model, const std::vector<TokenId>& ids,
                                 GgmlType kv) {
    SessionOptions so;
    so.threads = 2;
    so.type_k = so.type_v = kv;
    so.n_ctx = static_cast<int64_t>(ids.size()) + 32;
    Session s(Model::load(model), so);
    s.evaluate(ids, true);
    std::vector<double> out;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
        const auto l = s.logits(static_cast<int64_t>(i));
        double max = -INFINITY, z = 0;
        for (float v : l) max = std::max(max, static_cast<double>(v));
        for (float v : l) z += std::exp(static_cast<double>(v) - max);
        out.push_back(static_cast<double>(l[static_cast<size_t>(ids[i + 1])]) - max - std::log(z));
    }
    return out;
}

json run_json(const std::string& program, const std::vector<std::string>& args,
              const json& request) {
    TempDir tmp;
    write_file(tmp / "in.json", request.dump());
    std::vector<std::string> a = args;
    a.push_back((tmp / "in.json").string());
    a.push_back((tmp / "out.json").string());
    const RunResult r = run_program(program, a);
    EXPECT_EQ(r.exit_code, 0) << program << " failed: " << r.err;
    if (r.exit_code != 0) return json::object();
    return json::parse(read_file(tmp / "out.json"));
}

json llama_cpp(const std::string& model, const std::vector<TokenId>& ids, int n_predict,
               GgmlType kv) {
    json request = {{"ids", ids},
                    {"n_predict", n_predict},
                    {"threads", 2},
                    {"ctx", ids.size() + n_predict + 8}};
    if (kv != GgmlType::F16) {
        std::string name(type_name(kv));
        for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        request["type_k"] = name;
        request["type_v"] = name;
        request["flash_attention"] = true;
    }
    return run_json(
        "node",
        {(source_dir() / "tests/reference/logits.mjs").string(), reference_dir().string(), model},
        request);
}

}  // namespace bitnet::test
