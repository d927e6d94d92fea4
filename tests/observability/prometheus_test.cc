// The real Prometheus server (/usr/bin/prometheus, Debian package `prometheus`) scrapes a live
// dyt-scheduler and dyt-worker (processes on loopback, a job training) with a config generated
// from deploy/prometheus/prometheus.yml (1 s intervals, the live targets: the scheduler static,
// the worker through file service discovery), loads deploy/prometheus/alerts.yml, and then:
//   - every PromQL expression of the Grafana dashboard (deploy/grafana/dashboards/*.json),
//     with its template variables substituted ($job_id from the dashboard's own variable
//     query), returns data through /api/v1/query;
//   - every alert expression evaluates without error, every metric it names exists, and
//     Prometheus' own rule evaluation reports every rule healthy.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/observability/obs_test_util.h"

namespace dyt::obs::testing {
namespace {

using nlohmann::json;

const std::string kDeploy = std::string(DYT_SOURCE_DIR) + "/deploy";

class PrometheusTest : public LiveCluster {
 protected:
  void TearDown() override {
    if (prometheus_ > 0) {
      ::kill(prometheus_, SIGTERM);
      dist::testing::WaitFor(prometheus_, seconds(20));
    }
    LiveCluster::TearDown();
  }

  // deploy/prometheus/prometheus.yml with 1 s intervals, the rules by absolute path, the
  // scheduler's live address and the worker's in a file_sd file.
  void WriteConfig() {
    YAML::Node config = YAML::LoadFile(kDeploy + "/prometheus/prometheus.yml");
    config["global"]["scrape_interval"] = "1s";
    config["global"]["scrape_timeout"] = "1s";
    config["global"]["evaluation_interval"] = "1s";
    YAML::Node rules = config["rule_files"];
    ASSERT_TRUE(rules.IsSequence() && rules.size() >= 1);
    for (size_t i = 0; i < rules.size(); ++i) {
      rules[i] = kDeploy + "/prometheus/" + rules[i].as<std::string>();
    }
    std::set<std::string> jobs;
    for (YAML::Node job : config["scrape_configs"]) {
      const std::string name = job["job_name"].as<std::string>();
      jobs.insert(name);
      if (name == "dyt-scheduler") {
        job["static_configs"][0]["targets"][0] =
            "127.0.0.1:" + std::to_string(scheduler_metrics_port_);
      } else if (name == "dyt-worker") {
        ASSERT_TRUE(job["file_sd_configs"].IsSequence()) << "dyt-worker has no file_sd_configs";
        job.remove("static_configs");  // the worker comes through file service discovery
        job["file_sd_configs"][0]["files"][0] = dir_.Join("workers") + "/*.yml";
        job["file_sd_configs"][0]["refresh_interval"] = "1s";
      }
    }
    ASSERT_EQ(jobs, (std::set<std::string>{"dyt-scheduler", "dyt-worker"}));
    std::filesystem::create_directories(dir_.Join("workers"));
    std::ofstream(dir_.Join("workers/local.yml"))
        << "- targets: [\"127.0.0.1:" << worker_metrics_port_ << "\"]\n";
    YAML::Emitter out;
    out << config;
    std::ofstream(dir_.Join("prometheus.yml")) << out.c_str() << "\n";
  }

  void StartPrometheus() {
    prometheus_port_ = FreePort();
    ASSERT_GT(prometheus_port_, 0);
    prometheus_ = dist::testing::Spawn(
        {"/usr/bin/prometheus", "--config.file=" + dir_.Join("prometheus.yml"),
         "--storage.tsdb.path=" + dir_.Join("tsdb"),
         "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_), "--log.level=warn"},
        {}, dir_.Join("prometheus.log"));
    ASSERT_GT(prometheus_, 0);
    ASSERT_TRUE(Eventually([&] { return HttpGet(prometheus_port_, "/-/ready").status == 200; },
                           seconds(60)))
        << Logs();
  }

  // /api/v1/query at the current time; the parsed answer (null on a transport error).
  json Query(const std::string& promql) {
    const HttpResponse r = HttpGet(prometheus_port_, "/api/v1/query?query=" + UrlEncode(promql));
    if (r.status == 0) return json();
    return json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  }

  // The number of series `promql` returns now (-1 when the query fails).
  int Count(const std::string& promql) {
    const json j = Query(promql);
    if (!j.is_object() || j.value("status", "") != "success") return -1;
    return static_cast<int>(j["data"]["result"].size());
  }

  int prometheus_port_ = 0;
  pid_t prometheus_ = -1;
};

// Every "expr" in the dashboard's panels (rows included), in order.
void CollectExprs(const json& panels, std::vector<std::pair<std::string, std::string>>* out) {
  for (const json& p : panels) {
    if (p.contains("targets")) {
      for (const json& t : p["targets"]) {
        if (t.contains("expr")) out->push_back({p.value("title", "?"), t["expr"]});
      }
    }
    if (p.contains("panels")) CollectExprs(p["panels"], out);
  }
}

// Grafana's interval variables and the dashboard's own variables, replaced by values.
std::string Substitute(std::string expr, const std::map<std::string, std::string>& vars) {
  for (const auto& [name, value] : vars) {
    for (const std::string& form : {"${" + name + "}", "$" + name}) {
      for (size_t at = expr.find(form); at != std::string::npos; at = expr.find(form, at)) {
        expr.replace(at, form.size(), value);
        at += value.size();
      }
    }
  }
  return expr;
}

TEST_F(PrometheusTest, EveryDashboardAndAlertExpressionWorksAgainstALiveCluster) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  const std::string id = SubmitLongJob();
  ASSERT_TRUE(WaitTrainedAndCheckpointed(id));
  ASSERT_NO_FATAL_FAILURE(WriteConfig());
  ASSERT_NO_FATAL_FAILURE(StartPrometheus());

  // Both targets up (the worker found through file_sd), and every per-job series scraped a few
  // times, so that rate() windows hold samples.
  ASSERT_TRUE(Eventually([&] { return Count("up == 1") == 2; }, seconds(60)))
      << Query("up").dump() << Logs();
  ASSERT_EQ(Count("up{job=\"dyt-worker\", instance=\"127.0.0.1:" +
                  std::to_string(worker_metrics_port_) + "\"}"),
            1);
  ASSERT_TRUE(Eventually(
      [&] {
        return Count("count_over_time(dyt_job_val_loss[1m]) >= 4") == 1 &&
               Count("count_over_time(dyt_job_last_checkpoint_bytes[1m]) >= 4") == 1 &&
               Count("count_over_time(dyt_scheduler_queue_depth[1m]) >= 4") == 1;
      },
      seconds(60)))
      << Query("dyt_job_val_loss").dump() << Logs();

  // The dashboard.
  std::vector<std::string> dashboards;
  for (const auto& e : std::filesystem::directory_iterator(kDeploy + "/grafana/dashboards")) {
    if (e.path().extension() == ".json") dashboards.push_back(e.path().string());
  }
  ASSERT_FALSE(dashboards.empty());
  int checked = 0;
  for (const std::string& file : dashboards) {
    std::ifstream in(file);
    const json dash = json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(dash.is_object()) << file << ": not JSON";
    // Grafana's built-in intervals, then the dashboard's variables from their own queries.
    std::map<std::string, std::string> vars = {
        {"__rate_interval", "30s"}, {"__interval", "1s"}, {"__range", "5m"}};
    for (const json& v : dash["templating"]["list"]) {
      const std::string name = v["name"];
      const std::string query =
          v["query"].is_object() ? v["query"].value("query", "") : v["query"].get<std::string>();
      std::smatch m;
      ASSERT_TRUE(std::regex_match(query, m, std::regex(R"(label_values\((.+),\s*([a-zA-Z_]+)\))")))
          << file << ": variable " << name << ": expected label_values(selector, label)";
      const HttpResponse r =
          HttpGet(prometheus_port_,
                  "/api/v1/label/" + m[2].str() + "/values?match[]=" + UrlEncode(m[1].str()));
      const json values = json::parse(r.body, nullptr, false);
      ASSERT_TRUE(values.is_object() && values["data"].is_array() && !values["data"].empty())
          << file << ": variable " << name << " (" << query << ") has no values: " << r.body;
      vars[name] = values["data"][0];
    }
    if (vars.count("job_id") != 0) {
      EXPECT_EQ(vars["job_id"], id);
    }

    std::vector<std::pair<std::string, std::string>> exprs;
    CollectExprs(dash["panels"], &exprs);
    EXPECT_GE(exprs.size(), 20u) << file;
    for (const auto& [panel, raw] : exprs) {
      const std::string expr = Substitute(raw, vars);
      EXPECT_EQ(expr.find('$'), std::string::npos) << panel << ": unsubstituted: " << expr;
      const json answer = Query(expr);
      ASSERT_TRUE(answer.is_object()) << panel << ": " << expr;
      EXPECT_EQ(answer.value("status", ""), "success") << panel << ": " << expr << "\n"
                                                       << answer.dump();
      EXPECT_FALSE(answer["data"]["result"].empty())
          << file << ": panel \"" << panel << "\" returns no data: " << expr;
      ++checked;
    }
  }

  // The alert rules: each expression evaluates; each metric it names exists.
  const YAML::Node rules = YAML::LoadFile(kDeploy + "/prometheus/alerts.yml");
  const std::regex metric_re(R"(\b(dyt_[a-z0-9_]+|up)\b)");
  int alerts = 0;
  for (const YAML::Node& group : rules["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      const std::string name = rule["alert"] ? rule["alert"].as<std::string>() : "?";
      const std::string expr = rule["expr"].as<std::string>();
      const json answer = Query(expr);
      ASSERT_TRUE(answer.is_object()) << name;
      EXPECT_EQ(answer.value("status", ""), "success") << name << ": " << answer.dump();
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric_re);
           it != std::sregex_iterator(); ++it) {
        EXPECT_GE(Count("{__name__=\"" + (*it)[1].str() + "\"}"), 1)
            << name << ": metric " << (*it)[1] << " does not exist";
      }
      ++alerts;
    }
  }
  EXPECT_GE(alerts, 6);
  // Prometheus evaluated the rule files itself: every rule healthy.
  ASSERT_TRUE(Eventually(
      [&] {
        const json r = json::parse(HttpGet(prometheus_port_, "/api/v1/rules").body, nullptr, false);
        if (!r.is_object() || !r["data"].is_object()) return false;
        int evaluated = 0;
        for (const json& g : r["data"]["groups"]) {
          for (const json& rule : g["rules"]) {
            if (rule.value("health", "") != "ok") return false;
            ++evaluated;
          }
        }
        return evaluated == alerts;
      },
      seconds(30)))
      << HttpGet(prometheus_port_, "/api/v1/rules").body;
  std::printf("checked %d dashboard expressions and %d alert rules\n", checked, alerts);
  ASSERT_TRUE(CancelJob(id));
}

}  // namespace
}  // namespace dyt::obs::testing
