// leoam_kvstore_test_worker TARGET WORKER_ID CHAINS LEN: runs RunWorkload in its own process and
// exits 0 on success (used by kvstore_concurrency_test to get several client processes).
#include <cstdio>
#include <cstdlib>

#include "tests/kvstore/kvstore_process.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s TARGET WORKER_ID CHAINS LEN\n", argv[0]);
    return 2;
  }
  absl::Status s = leoam::kvstore::testing::RunWorkload(argv[1], std::atoi(argv[2]), std::atoi(argv[3]),
                                                        std::atoi(argv[4]));
  if (!s.ok()) {
    std::fprintf(stderr, "worker %s: %s\n", argv[2], s.ToString().c_str());
    return 1;
  }
  return 0;
}
