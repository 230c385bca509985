// cuda_emu_runtime.cpp: the execution engine behind cuda_emu.h and the C API that Java calls through FFM
// (emuLaunchKernel has the signature of cuLaunchKernel).
//
// Two engines play the CUDA threads of a block, chosen at compile time:
//  - fibers (default on x86-64): every CUDA thread is a fiber with its own stack, switched by a few lines
//    of assembly on one emulator thread. A round-robin scheduler resumes each unfinished thread until it
//    waits at a barrier; a full round in which no thread moves is a deadlock (e.g. a __syncthreads that
//    not every thread reaches) and fails the launch with a message instead of hanging. Switching costs
//    tens of nanoseconds, where waking an OS thread costs microseconds.
//  - OS threads (-DMODE_EMU_OS_THREADS, used for ThreadSanitizer and AddressSanitizer builds, and on other
//    architectures): a persistent pool; each launch wakes blockDim threads, and each of them runs every
//    block of the grid in order, meeting the others at an end-of-block barrier.
// Both run the blocks of a grid one after another and refill shared memory with a poison byte before
// each block. A thread that returns early leaves its block's barriers, as an exited GPU thread does.
#include "cuda_emu.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#if !defined(MODE_EMU_OS_THREADS) && !defined(__x86_64__)
#define MODE_EMU_OS_THREADS 1
#endif

#ifndef MODE_EMU_OS_THREADS
#include <sys/mman.h>
#endif

extern "C" {
// Bounds of the linker section that holds every __shared__ variable (weak: absent when none exists).
extern char __start_mode_emu_shared[] __attribute__((weak));
extern char __stop_mode_emu_shared[] __attribute__((weak));
}

namespace emu {

thread_local ThreadContext* tctx = nullptr;

namespace {

constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxWarps = kMaxThreadsPerBlock / 32;

struct KernelEntry {
    std::string name;
    void* fn;
    Trampoline trampoline;
    std::string signature;
};

std::vector<KernelEntry>& registry() {
    static std::vector<KernelEntry> entries;
    return entries;
}

struct Launch {
    const KernelEntry* kernel;
    void** params;
    dim3 grid, block;
    unsigned threads;
    std::vector<char> dynamicShared;
    std::string error;  // set when the launch fails (deadlock)
};

// ---------------------------------------------------------------- waiting, per engine

#ifndef MODE_EMU_OS_THREADS

extern "C" void mode_emu_switch(void** saveSp, void* loadSp);

// Saves the callee-saved registers and the SSE/x87 control words on the current stack, stores the stack
// pointer into *saveSp, and resumes the context whose stack pointer is loadSp.
asm(R"(
.text
.p2align 4
.type mode_emu_switch,@function
mode_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size mode_emu_switch,.-mode_emu_switch
)");

struct Fiber {
    void* sp = nullptr;
    char* stack = nullptr;
    ThreadContext ctx{};
    bool done = false;
};

constexpr size_t kFiberStackBytes = 512 * 1024;
constexpr size_t kGuardBytes = 4096;

struct FiberState {
    std::vector<std::unique_ptr<Fiber>> fibers;
    void* schedulerSp = nullptr;
    Fiber* current = nullptr;
    bool progress = false;
    Launch* launch = nullptr;
};

FiberState fs;  // touched only by the emulator thread

inline void yieldFiber() { mode_emu_switch(&fs.current->sp, fs.schedulerSp); }

inline void waitPhase(std::atomic<uint32_t>& phase, uint32_t old) {
    while (phase.load(std::memory_order_relaxed) == old) yieldFiber();
    fs.progress = true;
}

inline void releasePhase(std::atomic<uint32_t>& phase) {
    phase.fetch_add(1, std::memory_order_relaxed);
    fs.progress = true;
}

inline void noteArrival() { fs.progress = true; }

#else

inline void waitPhase(std::atomic<uint32_t>& phase, uint32_t old) {
    while (phase.load(std::memory_order_acquire) == old) phase.wait(old, std::memory_order_acquire);
}

inline void releasePhase(std::atomic<uint32_t>& phase) {
    phase.fetch_add(1, std::memory_order_release);
    phase.notify_all();
}

inline void noteArrival() {}

#endif

// A reusable barrier whose participant count can shrink (drop) while a phase is open.
// state: high 32 bits expected participants, low 32 bits arrivals in the current phase.
class Barrier {
public:
    void reset(uint32_t expected) { state_.store((uint64_t)expected << 32, std::memory_order_relaxed); }

    template <class Completion>
    void arriveAndWait(Completion&& completion) {
        uint32_t phase = phase_.load(std::memory_order_acquire);
        uint64_t s = state_.load(std::memory_order_relaxed);
        noteArrival();
        for (;;) {
            uint32_t expected = (uint32_t)(s >> 32), arrived = (uint32_t)s + 1;
            if (arrived >= expected) {
                if (state_.compare_exchange_weak(s, (uint64_t)expected << 32, std::memory_order_acq_rel)) {
                    completion();
                    releasePhase(phase_);
                    return;
                }
            } else if (state_.compare_exchange_weak(s, ((uint64_t)expected << 32) | arrived, std::memory_order_acq_rel)) {
                break;
            }
        }
        waitPhase(phase_, phase);
    }

    void arriveAndWait() {
        arriveAndWait([] {});
    }

    // Leaves the barrier for the rest of this block; completes the phase if everyone left has arrived.
    void drop() {
        uint64_t s = state_.load(std::memory_order_relaxed);
        for (;;) {
            uint32_t expected = (uint32_t)(s >> 32) - 1, arrived = (uint32_t)s;
            if (expected > 0 && arrived >= expected) {
                if (state_.compare_exchange_weak(s, (uint64_t)expected << 32, std::memory_order_acq_rel)) {
                    releasePhase(phase_);
                    return;
                }
            } else if (state_.compare_exchange_weak(s, ((uint64_t)expected << 32) | arrived, std::memory_order_acq_rel)) {
                return;
            }
        }
    }

private:
    std::atomic<uint64_t> state_{0};
    std::atomic<uint32_t> phase_{0};
};

// Exchange buffers of one warp: values and, per value, the 1-based index of the exchange that wrote it,
// so a reader knows whether its source lane took part in this exchange (an exited lane did not).
struct WarpState {
    Barrier barrier;
    unsigned long long exchange[2][32];
    unsigned tag[2][32];
};

// The single block context: blocks run one at a time, and launches are serialised.
struct BlockState {
    Barrier barrier;
    std::atomic<int> counts[3];
    WarpState warps[kMaxWarps];
    Launch* launch = nullptr;
};

BlockState block;

thread_local std::string lastError;

int fail(int code, std::string message) {
    lastError = std::move(message);
    return code;
}

unsigned char sharedFillByte() {
    static const unsigned char fill = [] {
        const char* env = std::getenv("MODE_EMU_SHARED_FILL");
        return (unsigned char)(env ? std::strtol(env, nullptr, 0) : 0xFF);
    }();
    return fill;
}

// Written with plain stores and no sanitizer instrumentation: the section may hold sanitizer redzones.
__attribute__((no_sanitize("address", "thread"))) void fillBytes(char* begin, char* end, unsigned char byte) {
    for (volatile char* p = begin; p < end; ++p) *p = (char)byte;
}

// Re-arms the barriers, warps and shared memory for the next block.
void armBlock(Launch& l) {
    block.barrier.reset(l.threads);
    for (auto& c : block.counts) c.store(0, std::memory_order_relaxed);
    unsigned warps = (l.threads + 31) / 32;
    for (unsigned w = 0; w < warps; w++) {
        unsigned n = std::min(32u, l.threads - 32 * w);
        block.warps[w].barrier.reset(n);
        std::memset(block.warps[w].tag, 0, sizeof(block.warps[w].tag));
    }
    unsigned char fill = sharedFillByte();
    if (__start_mode_emu_shared != nullptr && __stop_mode_emu_shared != nullptr) {
        fillBytes(__start_mode_emu_shared, __stop_mode_emu_shared, fill);
    }
    if (!l.dynamicShared.empty()) fillBytes(l.dynamicShared.data(), l.dynamicShared.data() + l.dynamicShared.size(), fill);
}

void setCoordinates(ThreadContext& c, const Launch& l, unsigned linear, unsigned long long b) {
    unsigned bx = l.block.x, by = l.block.y;
    c.tid = uint3{linear % bx, (linear / bx) % by, linear / (bx * by)};
    c.bid = uint3{(unsigned)(b % l.grid.x), (unsigned)((b / l.grid.x) % l.grid.y),
                  (unsigned)(b / ((unsigned long long)l.grid.x * l.grid.y))};
    c.bdim = l.block;
    c.gdim = l.grid;
    c.linear = linear;
    c.shuffles = 0;
    c.countCalls = 0;
    c.block = nullptr;
}

// The thread has returned from the kernel: it no longer takes part in its block's barriers.
void exitThread(unsigned linear) {
    WarpState& warp = block.warps[linear / 32];
    warp.barrier.drop();
    block.barrier.drop();
}

unsigned long long blockCount(const Launch& l) { return (unsigned long long)l.grid.x * l.grid.y * l.grid.z; }

#ifndef MODE_EMU_OS_THREADS

// ---------------------------------------------------------------- fiber engine

[[noreturn]] void fiberEntry() {
    Fiber* f = fs.current;
    Launch& l = *fs.launch;
    l.kernel->trampoline(l.kernel->fn, l.params);
    exitThread(f->ctx.linear);
    f->done = true;
    fs.progress = true;
    mode_emu_switch(&f->sp, fs.schedulerSp);
    std::abort();  // a finished fiber is never resumed
}

void prepareFiber(Fiber& f) {
    if (f.stack == nullptr) {
        void* p = mmap(nullptr, kFiberStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "emu: mmap of a %zu-byte fiber stack failed\n", kFiberStackBytes);
            std::abort();
        }
        mprotect(p, kGuardBytes, PROT_NONE);  // overflow faults instead of corrupting a neighbour
        f.stack = static_cast<char*>(p);
    }
    // Frame popped by mode_emu_switch: control words, r15..r12, rbx, rbp, return address (fiberEntry),
    // and a dummy caller return address so fiberEntry starts with the ABI's stack alignment.
    uintptr_t top = ((uintptr_t)(f.stack + kFiberStackBytes)) & ~(uintptr_t)15;
    uint64_t* s = reinterpret_cast<uint64_t*>(top);
    s[-1] = 0;
    s[-2] = (uint64_t)(uintptr_t)&fiberEntry;
    for (int k = 3; k <= 8; k++) s[-k] = 0;
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    s[-9] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    f.sp = &s[-9];
    f.done = false;
}

// Runs the whole grid on the calling thread; returns false (with l.error) on a deadlock.
bool runFibers(Launch& l) {
    while (fs.fibers.size() < l.threads) fs.fibers.push_back(std::make_unique<Fiber>());
    fs.launch = &l;
    block.launch = &l;
    unsigned long long blocks = blockCount(l);
    for (unsigned long long b = 0; b < blocks; b++) {
        armBlock(l);
        for (unsigned i = 0; i < l.threads; i++) {
            Fiber& f = *fs.fibers[i];
            prepareFiber(f);
            setCoordinates(f.ctx, l, i, b);
        }
        unsigned live = l.threads;
        while (live > 0) {
            fs.progress = false;
            for (unsigned i = 0; i < l.threads; i++) {
                Fiber& f = *fs.fibers[i];
                if (f.done) continue;
                fs.current = &f;
                tctx = &f.ctx;
                mode_emu_switch(&fs.schedulerSp, f.sp);
                if (f.done) live--;
            }
            if (!fs.progress && live > 0) {
                unsigned first = 0;
                while (fs.fibers[first]->done) first++;
                const ThreadContext& c = fs.fibers[first]->ctx;
                l.error = "kernel " + l.kernel->name + " deadlocked in block (" + std::to_string(c.bid.x) + "," +
                          std::to_string(c.bid.y) + "," + std::to_string(c.bid.z) + "): " + std::to_string(live) +
                          " of " + std::to_string(l.threads) +
                          " threads wait at a __syncthreads or warp shuffle that the others never reach "
                          "(divergent barrier)";
                tctx = nullptr;
                block.launch = nullptr;
                return false;
            }
        }
    }
    tctx = nullptr;
    block.launch = nullptr;
    return true;
}

// One emulator thread runs every launch, so fiber stacks never run on a caller's (e.g. a JVM) thread.
class Executor {
public:
    bool run(Launch& l) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!started_) {
            std::thread([this] { loop(); }).detach();
            started_ = true;
        }
        job_ = &l;
        done_ = false;
        cv_.notify_all();
        cv_.wait(lock, [this] { return done_; });
        return ok_;
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            cv_.wait(lock, [this] { return job_ != nullptr; });
            Launch* l = job_;
            lock.unlock();
            bool ok = runFibers(*l);
            lock.lock();
            ok_ = ok;
            job_ = nullptr;
            done_ = true;
            cv_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    bool started_ = false;
    Launch* job_ = nullptr;
    bool done_ = false;
    bool ok_ = true;
};

bool runLaunch(Launch& l) {
    static Executor* executor = new Executor();  // never destroyed: its detached thread outlives main
    return executor->run(l);
}

#else

// ---------------------------------------------------------------- OS-thread engine

int watchdogSeconds() {
    static const int seconds = [] {
        const char* env = std::getenv("MODE_EMU_TIMEOUT_S");
        int s = env ? std::atoi(env) : 300;
        return s > 0 ? s : 300;
    }();
    return seconds;
}

class Pool {
public:
    void run(Launch& l) {
        ensureWorkers(l.threads);
        block.launch = &l;
        end_.reset(l.threads);
        armBlock(l);
        remaining_.store((int)l.threads, std::memory_order_release);
        for (unsigned i = 0; i < l.threads; i++) workers_[i]->go.release();
        std::unique_lock<std::mutex> lock(doneMutex_);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(watchdogSeconds());
        while (remaining_.load(std::memory_order_acquire) != 0) {
            if (doneCv_.wait_until(lock, deadline) == std::cv_status::timeout &&
                remaining_.load(std::memory_order_acquire) != 0) {
                std::fprintf(stderr,
                             "emu: kernel %s did not finish within %d s: a __syncthreads or warp shuffle not reached by "
                             "every thread of a block deadlocks the emulator (set MODE_EMU_TIMEOUT_S to wait longer)\n",
                             l.kernel->name.c_str(), watchdogSeconds());
                std::abort();
            }
        }
        block.launch = nullptr;
    }

private:
    struct Worker {
        std::binary_semaphore go{0};
        ThreadContext ctx{};
        std::thread thread;
    };

    void ensureWorkers(unsigned n) {
        while (workers_.size() < n) {
            auto w = std::make_unique<Worker>();
            unsigned id = (unsigned)workers_.size();
            Worker* self = w.get();
            w->thread = std::thread([this, self, id] { workerMain(*self, id); });
            w->thread.detach();
            workers_.push_back(std::move(w));
        }
    }

    void workerMain(Worker& self, unsigned id) {
        tctx = &self.ctx;
        for (;;) {
            self.go.acquire();
            Launch& l = *block.launch;
            unsigned long long blocks = blockCount(l);
            for (unsigned long long b = 0; b < blocks; b++) {
                setCoordinates(self.ctx, l, id, b);
                l.kernel->trampoline(l.kernel->fn, l.params);
                exitThread(id);
                bool last = b + 1 == blocks;
                end_.arriveAndWait([&] {
                    if (!last) armBlock(l);
                });
            }
            if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lock(doneMutex_);
                doneCv_.notify_all();
            }
        }
    }

    std::vector<std::unique_ptr<Worker>> workers_;
    Barrier end_;
    std::atomic<int> remaining_{0};
    std::mutex doneMutex_;
    std::condition_variable doneCv_;
};

bool runLaunch(Launch& l) {
    static Pool* pool = new Pool();  // never destroyed: detached workers may still wait on it at exit
    pool->run(l);
    return true;
}

#endif

std::mutex& launchMutex() {
    static std::mutex m;
    return m;
}

}  // namespace

// ------------------------------------------------------------------ primitives used by cuda_emu.h

void syncthreads() { block.barrier.arriveAndWait(); }

int syncthreadsCount(int predicate) {
    // Three rotating counters: the one two calls ahead is cleared after this call's barrier, when no
    // thread can still be reading it and none can yet be adding to it.
    unsigned slot = tctx->countCalls++ % 3;
    if (predicate) block.counts[slot].fetch_add(1, std::memory_order_relaxed);
    block.barrier.arriveAndWait();
    int total = block.counts[slot].load(std::memory_order_relaxed);
    block.counts[(slot + 2) % 3].store(0, std::memory_order_relaxed);
    return total;
}

void syncwarp() { block.warps[tctx->linear / 32].barrier.arriveAndWait(); }

// Double-buffered exchange: a lane writes buffer p, meets the warp, reads buffer p. A lane cannot write
// buffer p again before the next meeting, which every lane reaches only after its read. A source lane's
// value counts only if its tag is this exchange's index (lanes that exited earlier left older tags).
unsigned long long warpExchange(unsigned long long value, int srcLane, bool* srcValid) {
    WarpState& w = block.warps[tctx->linear / 32];
    unsigned index = ++tctx->shuffles, parity = index & 1u, lane = tctx->linear & 31;
    w.exchange[parity][lane] = value;
    w.tag[parity][lane] = index;
    w.barrier.arriveAndWait();
    bool valid = srcLane >= 0 && srcLane < 32 && w.tag[parity][srcLane] == index;
    *srcValid = valid;
    return valid ? w.exchange[parity][srcLane] : value;
}

unsigned ballot(int predicate) {
    WarpState& w = block.warps[tctx->linear / 32];
    unsigned index = ++tctx->shuffles, parity = index & 1u, lane = tctx->linear & 31;
    w.exchange[parity][lane] = predicate ? 1 : 0;
    w.tag[parity][lane] = index;
    w.barrier.arriveAndWait();
    unsigned bits = 0;
    for (unsigned l = 0; l < 32; l++) {
        if (w.tag[parity][l] == index && w.exchange[parity][l]) bits |= 1u << l;
    }
    return bits;
}

void* dynamicShared() {
    Launch* l = block.launch;
    return l->dynamicShared.empty() ? nullptr : l->dynamicShared.data();
}

void trap(const char* what) {
    std::fprintf(stderr, "emu: %s in block (%u,%u,%u) thread (%u,%u,%u)\n", what, tctx->bid.x, tctx->bid.y,
                 tctx->bid.z, tctx->tid.x, tctx->tid.y, tctx->tid.z);
    std::abort();
}

void registerKernel(const char* name, void* fn, Trampoline trampoline, const char* signature) {
    registry().push_back(KernelEntry{name, fn, trampoline, signature});
}

}  // namespace emu

// ------------------------------------------------------------------ C API (called from Java through FFM)

using emu::fail;

extern "C" {

enum : int {
    EMU_SUCCESS = 0,
    EMU_ERROR_INVALID_VALUE = 1,
    EMU_ERROR_OUT_OF_MEMORY = 2,
    EMU_ERROR_NOT_FOUND = 500,
    EMU_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    EMU_ERROR_LAUNCH_FAILED = 719,
};

const char* emuGetErrorName(int code) {
    switch (code) {
        case EMU_SUCCESS: return "EMU_SUCCESS";
        case EMU_ERROR_INVALID_VALUE: return "EMU_ERROR_INVALID_VALUE";
        case EMU_ERROR_OUT_OF_MEMORY: return "EMU_ERROR_OUT_OF_MEMORY";
        case EMU_ERROR_NOT_FOUND: return "EMU_ERROR_NOT_FOUND";
        case EMU_ERROR_LAUNCH_OUT_OF_RESOURCES: return "EMU_ERROR_LAUNCH_OUT_OF_RESOURCES";
        case EMU_ERROR_LAUNCH_FAILED: return "EMU_ERROR_LAUNCH_FAILED";
        default: return "EMU_ERROR_UNKNOWN";
    }
}

// Detail of the calling thread's last failure (empty if none).
const char* emuGetLastErrorMessage(void) { return emu::lastError.c_str(); }

// 1 when CUDA threads are fibers on one emulator thread, 0 when they are OS threads.
int emuUsesFibers(void) {
#ifndef MODE_EMU_OS_THREADS
    return 1;
#else
    return 0;
#endif
}

int emuGetKernelCount(void) { return (int)emu::registry().size(); }

const char* emuGetKernelName(int i) {
    return i >= 0 && i < (int)emu::registry().size() ? emu::registry()[i].name.c_str() : nullptr;
}

// Parameter types of a kernel, one character each (p pointer, i int, u unsigned, l long long, f float,
// d double), as the C++ compiler sees them; nullptr when unknown.
const char* emuGetKernelSignature(const char* name) {
    for (auto& e : emu::registry()) {
        if (e.name == name) return e.signature.c_str();
    }
    return nullptr;
}

// sizeof and alignof of each parameter type, in the order of the codes above: for the layout test.
int emuGetScalarLayout(int* sizes, int* aligns, int capacity) {
    const int s[] = {(int)sizeof(void*), (int)sizeof(int), (int)sizeof(unsigned), (int)sizeof(long long),
                     (int)sizeof(float), (int)sizeof(double)};
    const int a[] = {(int)alignof(void*), (int)alignof(int), (int)alignof(unsigned), (int)alignof(long long),
                     (int)alignof(float), (int)alignof(double)};
    int n = (int)(sizeof(s) / sizeof(s[0]));
    for (int i = 0; i < n && i < capacity; i++) {
        sizes[i] = s[i];
        aligns[i] = a[i];
    }
    return n;
}

int emuModuleGetFunction(void** hfunc, const char* name) {
    if (hfunc == nullptr || name == nullptr) return fail(EMU_ERROR_INVALID_VALUE, "null argument");
    for (auto& e : emu::registry()) {
        if (e.name == name) {
            *hfunc = &e;
            return EMU_SUCCESS;
        }
    }
    return fail(EMU_ERROR_NOT_FOUND, std::string("no kernel named ") + name + " in the emulator library");
}

// Same parameters as cuLaunchKernel. Runs the whole grid before returning (the stream is ignored).
int emuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                    unsigned sharedMemBytes, void* stream, void** kernelParams, void** extra) {
    (void)stream;
    if (f == nullptr) return fail(EMU_ERROR_INVALID_VALUE, "null function");
    if (extra != nullptr) return fail(EMU_ERROR_INVALID_VALUE, "the 'extra' parameter form is not supported");
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0)
        return fail(EMU_ERROR_INVALID_VALUE, "zero grid or block dimension");
    if (gx > 2147483647u || gy > 65535 || gz > 65535)
        return fail(EMU_ERROR_INVALID_VALUE, "grid beyond 2^31-1 x 65535 x 65535");
    unsigned long long threads = (unsigned long long)bx * by * bz;
    if (threads > 1024 || bx > 1024 || by > 1024 || bz > 64)
        return fail(EMU_ERROR_INVALID_VALUE, "block of " + std::to_string(bx) + "x" + std::to_string(by) + "x" +
                                                 std::to_string(bz) + " exceeds the CUDA limits");
    if (sharedMemBytes > 227 * 1024)
        return fail(EMU_ERROR_LAUNCH_OUT_OF_RESOURCES, "dynamic shared memory above 227 KiB");
    auto* kernel = static_cast<const emu::KernelEntry*>(f);
    if (!kernel->signature.empty() && kernelParams == nullptr)
        return fail(EMU_ERROR_INVALID_VALUE, "null kernelParams for a kernel with parameters");
    std::lock_guard<std::mutex> lock(emu::launchMutex());
    emu::Launch l{kernel, kernelParams, dim3(gx, gy, gz), dim3(bx, by, bz), (unsigned)threads, {}, {}};
    l.dynamicShared.resize(sharedMemBytes);
    if (!emu::runLaunch(l)) return fail(EMU_ERROR_LAUNCH_FAILED, l.error);
    return EMU_SUCCESS;
}

int emuMemAlloc(unsigned long long* dptr, size_t bytes) {
    if (dptr == nullptr || bytes == 0) return fail(EMU_ERROR_INVALID_VALUE, "null pointer or zero size");
    size_t rounded = (bytes + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, rounded);
    if (p == nullptr) return fail(EMU_ERROR_OUT_OF_MEMORY, "aligned_alloc of " + std::to_string(bytes) + " bytes failed");
    *dptr = (unsigned long long)(uintptr_t)p;
    return EMU_SUCCESS;
}

int emuMemFree(unsigned long long dptr) {
    std::free((void*)(uintptr_t)dptr);
    return EMU_SUCCESS;
}

}  // extern "C"
