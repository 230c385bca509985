/* JNI side of the native-call overhead benchmark (ai.mode.bench.JniShim): calls a C function through a
 * function pointer that Java looked up with FFM, so JNI, FFM and JavaCPP all reach the same OpenBLAS code.
 * Built at benchmark time: cc -O2 -shared -fPIC -I$JAVA_HOME/include -I$JAVA_HOME/include/linux */
#include <jni.h>
#include <stdint.h>

typedef int (*int_fn)(void);
typedef float (*sdot_fn)(int, const float *, int, const float *, int);

JNIEXPORT jint JNICALL Java_ai_mode_bench_JniShim_callInt(JNIEnv *env, jclass cls, jlong fn) {
    (void) env; (void) cls;
    return ((int_fn) (intptr_t) fn)();
}

JNIEXPORT jfloat JNICALL Java_ai_mode_bench_JniShim_callSdot(JNIEnv *env, jclass cls, jlong fn, jint n, jlong x, jlong y) {
    (void) env; (void) cls;
    return ((sdot_fn) (intptr_t) fn)(n, (const float *) (intptr_t) x, 1, (const float *) (intptr_t) y, 1);
}
