package ai.mode.tests.reference;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.function.ToDoubleFunction;

/**
 * Central finite differences in float64, for checking analytic gradients of the {@link Ref#F64} references:
 * {@code df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / 2h}.
 */
public final class FiniteDifference {
    private FiniteDifference() {}

    /** The numerical gradient of f at x (x is restored afterwards). */
    public static double[] gradient(ToDoubleFunction<double[]> f, double[] x, double h) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + h;
            double plus = f.applyAsDouble(x);
            x[i] = keep - h;
            double minus = f.applyAsDouble(x);
            x[i] = keep;
            g[i] = (plus - minus) / (2 * h);
        }
        return g;
    }

    /** sum(a * b): turns an output into a scalar loss whose gradient with respect to the output is b. */
    public static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    /** Asserts |analytic - numeric| <= tol * (1 + max|numeric|) elementwise, naming the worst index. */
    public static void assertGradient(String what, double[] analytic, double[] numeric, double tol) {
        double scale = 1;
        for (double v : numeric) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < numeric.length; i++) {
            double e = Math.abs(analytic[i] - numeric[i]);
            if (!(e <= tol * scale)) {
                fail(what + ": analytic gradient " + analytic[i] + " vs finite difference " + numeric[i] + " at index "
                        + i + " (tolerance " + tol * scale + ")");
            }
        }
    }
}
