// optimizer.cu: one AdamW step (decoupled weight decay, bias-corrected moments), elementwise on float32
// master weights. gradScale carries global-norm clipping and accumulation averaging; the bias
// corrections 1 - beta^step are computed by the caller in float64.
#include "mode_common.cuh"

using namespace mode;

// block 256, grid min(ceil(n / 256), 65535)
extern "C" __global__ void __launch_bounds__(256) mode_adamw_step_f32(float* param, const float* grad, float* m, float* v, long long n, float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale, float biasCorrection1, float biasCorrection2) {
    for (long long i = globalThread(); i < n; i += globalStride()) {
        float g = grad[i] * gradScale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = param[i];
        float update = (mi / biasCorrection1) / (sqrtf(vi / biasCorrection2) + eps) + weightDecay * p;
        param[i] = p - lr * update;
    }
}
