// Test main for property tests: prints the rapidcheck parameters (seed included) before running,
// so any failure can be replayed with RC_PARAMS="seed=N".
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  const char* params = std::getenv("RC_PARAMS");
  std::printf("rapidcheck RC_PARAMS=\"%s\" (rapidcheck prints \"Using configuration: seed=N\")\n",
              params != nullptr ? params : "");
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
