#include "sources/open_source.h"

#include <cstdlib>

#include "sources/composite_source.h"
#include "sources/local_source.h"
#include "sources/s3/s3_source.h"

namespace serving {

namespace {

StatusOr<std::unique_ptr<RepositorySource>> Open(const std::string& repository, const SourceOptions& o) {
  if (repository.rfind("s3://", 0) != 0) return std::unique_ptr<RepositorySource>(new LocalDirectorySource(repository));
  const auto env = s3::AwsEnvironment();
  const s3::Addressing addressing = o.s3_addressing == "path"      ? s3::Addressing::kPath
                                    : o.s3_addressing == "virtual" ? s3::Addressing::kVirtual
                                                                   : s3::Addressing::kAuto;
  SERVING_ASSIGN_OR_RETURN(s3::Location location, s3::ParseLocation(repository, env, addressing));
  s3::Client::Options client;
  client.location = std::move(location);
  client.credentials = s3::CredentialsFrom(env);
  client.ca_file = o.s3_ca_file;
  if (client.ca_file.empty() && env.count("AWS_CA_BUNDLE")) client.ca_file = env.at("AWS_CA_BUNDLE");
  std::filesystem::path cache_dir = o.cache_dir;
  if (cache_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    cache_dir = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / "inference-server-models";
  }
  S3Source::Options source;
  SERVING_ASSIGN_OR_RETURN(source.downloads, DownloadDir::Open(cache_dir, "s3-"));
  source.max_file_bytes = o.max_file_bytes;
  source.max_model_bytes = o.max_model_bytes;
  source.metrics = o.metrics;
  auto s3 = std::make_unique<S3Source>(std::make_unique<s3::Client>(std::move(client)), std::move(source));
  SERVING_RETURN_IF_ERROR(s3->Check());
  return std::unique_ptr<RepositorySource>(std::move(s3));
}

}  // namespace

StatusOr<std::unique_ptr<RepositorySource>> OpenRepositorySource(const SourceOptions& o) {
  std::vector<std::unique_ptr<RepositorySource>> sources;
  for (const std::string& repository : o.repositories) {
    SERVING_ASSIGN_OR_RETURN(auto source, Open(repository, o));
    sources.push_back(std::move(source));
  }
  if (sources.size() == 1) return std::move(sources.front());
  return std::unique_ptr<RepositorySource>(new CompositeSource(std::move(sources)));
}

}  // namespace serving
