package ai.mode.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Determinism, and every answer checked by an independent evaluator (parser, rationals, substitution). */
class MathProblemGeneratorTest {

    @Test
    void sameSeedSameProblemsOtherSeedOthers() {
        List<Document> a = MathProblemGenerator.documents(3, 20, 4);
        List<Document> b = MathProblemGenerator.documents(3, 20, 4);
        List<Document> c = MathProblemGenerator.documents(4, 20, 4);
        assertEquals(a, b);
        assertNotEquals(a.get(0).text(), c.get(0).text());
        assertEquals(20, a.size());
        assertEquals(4, a.get(5).text().split("Problem: ").length - 1);
    }

    @Test
    void arithmeticAnswersMatchAnIndependentParser() {
        MathProblemGenerator g = new MathProblemGenerator(11);
        for (int i = 0; i < 400; i++) {
            String p = g.next(MathProblemGenerator.Kind.ARITHMETIC);
            Matcher m = Pattern.compile("Evaluate (.*)\\.\\n").matcher(p);
            assertTrue(m.find(), p);
            long expected = new Parser(m.group(1)).parse();
            assertEquals(expected, answer(p), p);
            // Every intermediate line must evaluate to the same value.
            for (String line : p.split("\n")) {
                if (line.startsWith("= ")) assertEquals(expected, new Parser(line.substring(2)).parse(), p);
            }
        }
    }

    @Test
    void fractionAnswersMatchRationalArithmetic() {
        MathProblemGenerator g = new MathProblemGenerator(12);
        Pattern q = Pattern.compile("Compute (\\d+)/(\\d+) (.) (\\d+)/(\\d+) ");
        for (int i = 0; i < 400; i++) {
            String p = g.next(MathProblemGenerator.Kind.FRACTIONS);
            Matcher m = q.matcher(p);
            assertTrue(m.find(), p);
            BigInteger a = big(m.group(1)), b = big(m.group(2)), c = big(m.group(4)), d = big(m.group(5));
            BigInteger[] r = switch (m.group(3)) {
                case "+" -> new BigInteger[] {a.multiply(d).add(c.multiply(b)), b.multiply(d)};
                case "-" -> new BigInteger[] {a.multiply(d).subtract(c.multiply(b)), b.multiply(d)};
                case "×" -> new BigInteger[] {a.multiply(c), b.multiply(d)};
                default -> new BigInteger[] {a.multiply(d), b.multiply(c)};
            };
            BigInteger gcd = r[0].gcd(r[1]);
            String expected = r[0].signum() == 0
                    ? "0"
                    : r[1].divide(gcd).equals(BigInteger.ONE)
                            ? r[0].divide(gcd).toString()
                            : r[0].divide(gcd) + "/" + r[1].divide(gcd);
            assertEquals(expected, answerText(p), p);
        }
    }

    @Test
    void linearEquationAnswersSatisfyTheEquation() {
        MathProblemGenerator g = new MathProblemGenerator(13);
        for (int i = 0; i < 400; i++) {
            String p = g.next(MathProblemGenerator.Kind.LINEAR_EQUATION);
            Matcher m = Pattern.compile("Solve for x: (.*) = (.*)\\.\\n").matcher(p);
            assertTrue(m.find(), p);
            long x = Long.parseLong(answerText(p).replace("x = ", ""));
            assertEquals(evalLinear(m.group(1), x), evalLinear(m.group(2), x), p);
        }
    }

    @Test
    void polynomialAndWordProblemStepsAreArithmeticallyTrue() {
        MathProblemGenerator g = new MathProblemGenerator(14);
        // "a op b = r" or "a op (b) = r", where a does not close and b does not open a larger parenthesis.
        Pattern step = Pattern.compile("(?<![\\d(])(-?\\d+) ([+×-]) (?:\\((-?\\d+)\\)|(-?\\d+)(?![\\d)/])) = (-?\\d+)");
        int checked = 0;
        for (int i = 0; i < 400; i++) {
            String p =
                    g.next(i % 2 == 0 ? MathProblemGenerator.Kind.POLYNOMIAL : MathProblemGenerator.Kind.WORD_PROBLEM);
            assertTrue(p.startsWith("Problem: ") && p.contains("\nAnswer: "), p);
            Matcher m = step.matcher(p);
            while (m.find()) {
                long a = Long.parseLong(m.group(1)), r = Long.parseLong(m.group(5));
                long b = Long.parseLong(m.group(3) != null ? m.group(3) : m.group(4));
                long expected = switch (m.group(2)) {
                    case "+" -> a + b;
                    case "-" -> a - b;
                    default -> a * b;
                };
                assertEquals(expected, r, p);
                checked++;
            }
        }
        assertTrue(checked > 300, "too few checkable steps: " + checked);
    }

    @Test
    void expansionMatchesPolynomialMultiplication() {
        MathProblemGenerator g = new MathProblemGenerator(15);
        Pattern q = Pattern.compile("Expand \\((.*)\\)\\((.*)\\)\\.");
        int found = 0;
        for (int i = 0; i < 300; i++) {
            String p = g.next(MathProblemGenerator.Kind.POLYNOMIAL);
            Matcher m = q.matcher(p);
            if (!m.find()) continue;
            found++;
            for (long x = -3; x <= 3; x++) {
                long lhs = evalPoly(m.group(1), x) * evalPoly(m.group(2), x);
                assertEquals(lhs, evalPoly(answerText(p), x), p);
            }
        }
        assertTrue(found > 50);
    }

    /** Value of "ax + b", "ax", "-x - 4" or "b" at x. */
    private static long evalLinear(String side, long x) {
        Matcher m = Pattern.compile("(-?\\d*)x(?: ([+-]) (\\d+))?|(-?\\d+)").matcher(side);
        assertTrue(m.matches(), side);
        if (m.group(4) != null) return Long.parseLong(m.group(4));
        long a = m.group(1).isEmpty() ? 1 : m.group(1).equals("-") ? -1 : Long.parseLong(m.group(1));
        long b = m.group(3) == null
                ? 0
                : Long.parseLong(m.group(3)) * (m.group(2).equals("-") ? -1 : 1);
        return a * x + b;
    }

    private static long evalPoly(String poly, long x) {
        String expr = poly.replace("x^2", "x*x").replaceAll("(\\d)x", "$1*x").replace("x", "(" + x + ")");
        return new Parser(expr).parse();
    }

    private static BigInteger big(String s) {
        return new BigInteger(s);
    }

    private static String answerText(String p) {
        Matcher m = Pattern.compile("\\nAnswer: (.*)\\n").matcher(p);
        assertTrue(m.find(), p);
        return m.group(1);
    }

    private static long answer(String p) {
        return Long.parseLong(answerText(p));
    }

    /** Recursive-descent integer expression parser: + - × * ÷ / ( ) with the usual precedence. */
    static final class Parser {
        private final String s;
        private int pos;

        Parser(String s) {
            this.s = s.replace(" ", "");
        }

        long parse() {
            long v = sum();
            if (pos != s.length()) throw new IllegalArgumentException("trailing input in " + s + " at " + pos);
            return v;
        }

        private long sum() {
            long v = product();
            while (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                char op = s.charAt(pos++);
                long r = product();
                v = op == '+' ? v + r : v - r;
            }
            return v;
        }

        private long product() {
            long v = unary();
            while (pos < s.length() && "×*÷/".indexOf(s.charAt(pos)) >= 0) {
                char op = s.charAt(pos++);
                long r = unary();
                if (op == '÷' || op == '/') {
                    assertEquals(0, v % r, "inexact division in " + s);
                    v /= r;
                } else v *= r;
            }
            return v;
        }

        private long unary() {
            if (s.charAt(pos) == '-') {
                pos++;
                return -unary();
            }
            if (s.charAt(pos) == '(') {
                pos++;
                long v = sum();
                assertEquals(')', s.charAt(pos++), s);
                return v;
            }
            int start = pos;
            while (pos < s.length() && Character.isDigit(s.charAt(pos))) pos++;
            return Long.parseLong(s.substring(start, pos));
        }
    }
}
