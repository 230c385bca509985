// sanitizer_main.cpp: runs one scenario of emu_checks.cu in a standalone program, for the ThreadSanitizer
// and AddressSanitizer builds of the emulator (OS-thread engine). Exit 0 when the launch succeeded; the
// sanitizer's own report and exit status say whether it found a bug.
//   race / norace: emu_test_rotate without / with its __syncthreads
//   oob / inbounds: emu_test_write one element past / within a malloc'd buffer
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" int emuModuleGetFunction(void** hfunc, const char* name);
extern "C" int emuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                               unsigned sharedMemBytes, void* stream, void** kernelParams, void** extra);

static void* function(const char* name) {
    void* f = nullptr;
    if (emuModuleGetFunction(&f, name) != 0) {
        std::fprintf(stderr, "kernel %s not found\n", name);
        std::exit(2);
    }
    return f;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s race|norace|oob|inbounds\n", argv[0]);
        return 2;
    }
    const char* scenario = argv[1];
    int rc;
    if (!std::strcmp(scenario, "race") || !std::strcmp(scenario, "norace")) {
        const int n = 64, blocks = 2;
        std::vector<float> in(n * blocks), out(n * blocks);
        for (int i = 0; i < n * blocks; i++) in[i] = (float)i;
        float* pin = in.data();
        float* pout = out.data();
        int withSync = !std::strcmp(scenario, "norace");
        void* params[] = {&pin, &pout, &withSync};
        rc = emuLaunchKernel(function("emu_test_rotate"), blocks, 1, 1, n, 1, 1, 0, nullptr, params, nullptr);
    } else if (!std::strcmp(scenario, "oob") || !std::strcmp(scenario, "inbounds")) {
        const int n = 100;
        float* buffer = static_cast<float*>(std::malloc(n * sizeof(float)));
        int limit = !std::strcmp(scenario, "oob") ? n : n - 1;
        void* params[] = {&buffer, &limit};
        rc = emuLaunchKernel(function("emu_test_write"), 2, 1, 1, 64, 1, 1, 0, nullptr, params, nullptr);
        std::free(buffer);
    } else {
        std::fprintf(stderr, "unknown scenario %s\n", scenario);
        return 2;
    }
    if (rc != 0) {
        std::fprintf(stderr, "launch failed: %d\n", rc);
        return 3;
    }
    std::printf("launched %s\n", scenario);
    return 0;
}
