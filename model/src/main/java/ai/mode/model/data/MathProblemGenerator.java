package ai.mode.model.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Procedural mathematics problems with worked solutions: arithmetic with precedence, fractions, linear equations,
 * polynomials and word problems. Every step is computed exactly (integers), so solutions are correct by construction.
 * Deterministic: the same seed gives the same sequence on every JVM ({@link java.util.Random} is specified).
 *
 * <p>Each problem is a block {@code Problem: ...}, worked lines, then {@code Answer: ...}.
 */
public final class MathProblemGenerator {

    /** The kinds of problem, drawn uniformly. */
    public enum Kind {
        ARITHMETIC,
        FRACTIONS,
        LINEAR_EQUATION,
        POLYNOMIAL,
        WORD_PROBLEM
    }

    private static final String[] NAMES = {
        "Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena", "Mateo", "Nia",
        "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq"
    };
    private static final String[] ITEMS = {
        "notebooks", "pencils", "apples", "tickets", "books", "mugs", "stamps", "oranges", "marbles", "candles"
    };

    private final Random rng;

    public MathProblemGenerator(long seed) {
        this.rng = new Random(seed);
    }

    /** The next problem of a random kind. */
    public String next() {
        return next(Kind.values()[rng.nextInt(Kind.values().length)]);
    }

    /** The next problem of the given kind. */
    public String next(Kind kind) {
        return switch (kind) {
            case ARITHMETIC -> arithmetic();
            case FRACTIONS -> fractions();
            case LINEAR_EQUATION -> linearEquation();
            case POLYNOMIAL -> polynomial();
            case WORD_PROBLEM -> wordProblem();
        };
    }

    /**
     * {@code count} documents of {@code problemsPerDocument} problems each (separated by a blank line), ids
     * {@code math-gen/00000...}, each its own group.
     */
    public static List<Document> documents(long seed, int count, int problemsPerDocument) {
        MathProblemGenerator g = new MathProblemGenerator(seed);
        List<Document> docs = new ArrayList<>(count);
        for (int d = 0; d < count; d++) {
            StringBuilder sb = new StringBuilder();
            for (int p = 0; p < problemsPerDocument; p++) {
                if (p > 0) sb.append('\n');
                sb.append(g.next());
            }
            String id = String.format("math-gen/%05d", d);
            docs.add(new Document(id, id, sb.toString()));
        }
        return docs;
    }

    // ------------------------------------------------------------------ arithmetic

    /** Expression tree: a number, or a binary operation. */
    private sealed interface Expr permits Num, Bin {}

    private record Num(long value) implements Expr {}

    private record Bin(char op, Expr left, Expr right) implements Expr {}

    private static int precedence(char op) {
        return op == '+' || op == '-' ? 1 : 2;
    }

    private static String show(Expr e) {
        if (e instanceof Num n) return n.value() < 0 ? "(" + n.value() + ")" : Long.toString(n.value());
        Bin b = (Bin) e;
        String l = show(b.left()), r = show(b.right());
        if (b.left() instanceof Bin lb && precedence(lb.op()) < precedence(b.op())) l = "(" + l + ")";
        // Right operands of equal precedence keep their parentheses too, so the shown steps read left to right.
        if (b.right() instanceof Bin rb && precedence(rb.op()) <= precedence(b.op())) r = "(" + r + ")";
        return l + " " + (b.op() == '*' ? "×" : String.valueOf(b.op())) + " " + r;
    }

    /** Reduces the leftmost operation whose operands are both numbers; returns the new tree. */
    private static Expr step(Expr e) {
        Bin b = (Bin) e;
        if (b.left() instanceof Num l && b.right() instanceof Num r)
            return new Num(apply(b.op(), l.value(), r.value()));
        if (b.left() instanceof Bin) return new Bin(b.op(), step(b.left()), b.right());
        return new Bin(b.op(), b.left(), step(b.right()));
    }

    private static long apply(char op, long a, long b) {
        return switch (op) {
            case '+' -> a + b;
            case '-' -> a - b;
            case '*' -> a * b;
            case '÷' -> a / b;
            default -> throw new IllegalStateException("operator " + op);
        };
    }

    private Expr randomExpr(int operators) {
        if (operators == 0) return new Num(1 + rng.nextInt(20));
        int leftOps = rng.nextInt(operators);
        Expr left = randomExpr(leftOps), right = randomExpr(operators - 1 - leftOps);
        char op = "+-*".charAt(rng.nextInt(3));
        if (op == '*' && (value(left) > 40 || value(right) > 12)) op = '+';
        // An exact division: make the left side a multiple of the right when both are small numbers.
        if (rng.nextInt(6) == 0 && right instanceof Num r && left instanceof Num && r.value() > 1) {
            return new Bin('÷', new Num(r.value() * (1 + rng.nextInt(9))), right);
        }
        return new Bin(op, left, right);
    }

    private static long value(Expr e) {
        while (e instanceof Bin) e = step(e);
        return Math.abs(((Num) e).value());
    }

    private String arithmetic() {
        Expr e = randomExpr(2 + rng.nextInt(3));
        StringBuilder sb = new StringBuilder("Problem: Evaluate " + show(e) + ".\nSolution:\n");
        while (e instanceof Bin) {
            e = step(e);
            sb.append("= ").append(show(e)).append('\n');
        }
        return sb.append("Answer: ").append(((Num) e).value()).append('\n').toString();
    }

    // ------------------------------------------------------------------ fractions

    private static long gcd(long a, long b) {
        a = Math.abs(a);
        b = Math.abs(b);
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return a;
    }

    private static String frac(long n, long d) {
        if (d < 0) {
            n = -n;
            d = -d;
        }
        return d == 1 ? Long.toString(n) : n + "/" + d;
    }

    private String fractions() {
        long a = 1 + rng.nextInt(9), b = 2 + rng.nextInt(11), c = 1 + rng.nextInt(9), d = 2 + rng.nextInt(11);
        char op = "+-×÷".charAt(rng.nextInt(4));
        StringBuilder sb = new StringBuilder("Problem: Compute " + a + "/" + b + " " + op + " " + c + "/" + d
                + " and write the result in lowest terms.\nSolution:\n");
        long n, m;
        if (op == '+' || op == '-') {
            long lcd = b / gcd(b, d) * d;
            long a2 = a * (lcd / b), c2 = c * (lcd / d);
            sb.append("The least common denominator of ")
                    .append(b)
                    .append(" and ")
                    .append(d)
                    .append(" is ")
                    .append(lcd)
                    .append(".\n");
            sb.append(a)
                    .append('/')
                    .append(b)
                    .append(" = ")
                    .append(a2)
                    .append('/')
                    .append(lcd)
                    .append(" and ")
                    .append(c)
                    .append('/')
                    .append(d)
                    .append(" = ")
                    .append(c2)
                    .append('/')
                    .append(lcd)
                    .append(".\n");
            n = op == '+' ? a2 + c2 : a2 - c2;
            m = lcd;
            sb.append(a2)
                    .append('/')
                    .append(lcd)
                    .append(' ')
                    .append(op)
                    .append(' ')
                    .append(c2)
                    .append('/')
                    .append(lcd)
                    .append(" = ")
                    .append(n)
                    .append('/')
                    .append(m)
                    .append(".\n");
        } else if (op == '×') {
            n = a * c;
            m = b * d;
            sb.append("Multiply the numerators and the denominators: (")
                    .append(a)
                    .append(" × ")
                    .append(c)
                    .append(")/(")
                    .append(b)
                    .append(" × ")
                    .append(d)
                    .append(") = ")
                    .append(n)
                    .append('/')
                    .append(m)
                    .append(".\n");
        } else {
            n = a * d;
            m = b * c;
            sb.append("Dividing by ")
                    .append(c)
                    .append('/')
                    .append(d)
                    .append(" is multiplying by ")
                    .append(d)
                    .append('/')
                    .append(c)
                    .append(": (")
                    .append(a)
                    .append(" × ")
                    .append(d)
                    .append(")/(")
                    .append(b)
                    .append(" × ")
                    .append(c)
                    .append(") = ")
                    .append(n)
                    .append('/')
                    .append(m)
                    .append(".\n");
        }
        long g = gcd(n, m);
        if (n == 0) {
            sb.append("The numerator is 0, so the result is 0.\n");
            return sb.append("Answer: 0\n").toString();
        }
        if (g > 1) {
            sb.append("Divide numerator and denominator by their greatest common divisor ")
                    .append(g)
                    .append(": ")
                    .append(n)
                    .append('/')
                    .append(m)
                    .append(" = ")
                    .append(frac(n / g, m / g))
                    .append(".\n");
        } else {
            sb.append(n).append('/').append(m).append(" is already in lowest terms.\n");
        }
        return sb.append("Answer: ").append(frac(n / g, m / g)).append('\n').toString();
    }

    // ------------------------------------------------------------------ linear equations

    /** "ax + b" with tidy signs and unit coefficients. */
    private static String linear(long a, long b, String var) {
        StringBuilder sb = new StringBuilder();
        if (a != 0) sb.append(a == 1 ? "" : a == -1 ? "-" : Long.toString(a)).append(var);
        if (b != 0 || a == 0) {
            if (sb.isEmpty()) sb.append(b);
            else sb.append(b < 0 ? " - " : " + ").append(Math.abs(b));
        }
        return sb.toString();
    }

    private long nonZero(int bound) {
        long v = 1 + rng.nextInt(bound);
        return rng.nextBoolean() ? v : -v;
    }

    private String linearEquation() {
        long x = rng.nextInt(25) - 12;
        long a = nonZero(9), c;
        do {
            c = rng.nextInt(19) - 9;
        } while (c == a);
        long b = rng.nextInt(41) - 20;
        long d = (a - c) * x + b;
        StringBuilder sb = new StringBuilder(
                "Problem: Solve for x: " + linear(a, b, "x") + " = " + linear(c, d, "x") + ".\nSolution:\n");
        long k = a - c;
        if (c != 0) {
            sb.append(c > 0 ? "Subtract " + linear(c, 0, "x") + " from" : "Add " + linear(-c, 0, "x") + " to")
                    .append(" both sides: ")
                    .append(linear(k, b, "x"))
                    .append(" = ")
                    .append(d)
                    .append(".\n");
        }
        if (b != 0) {
            sb.append(b > 0 ? "Subtract " + b + " from" : "Add " + (-b) + " to")
                    .append(" both sides: ")
                    .append(linear(k, 0, "x"))
                    .append(" = ")
                    .append(d - b)
                    .append(".\n");
        }
        if (k != 1)
            sb.append("Divide both sides by ")
                    .append(k)
                    .append(": x = ")
                    .append(x)
                    .append(".\n");
        sb.append("Check: ")
                .append(substitute(a, b, x))
                .append(" = ")
                .append(a * x + b)
                .append(" and ")
                .append(substitute(c, d, x))
                .append(" = ")
                .append(c * x + d)
                .append(".\n");
        return sb.append("Answer: x = ").append(x).append('\n').toString();
    }

    private static String substitute(long a, long b, long x) {
        String t = a + "(" + x + ")";
        return b == 0 ? t : t + (b < 0 ? " - " : " + ") + Math.abs(b);
    }

    // ------------------------------------------------------------------ polynomials

    /** Polynomial with coefficients highest degree first, e.g. {3, -2, 1} is 3x^2 - 2x + 1. */
    private static String poly(long... coef) {
        StringBuilder sb = new StringBuilder();
        int deg = coef.length - 1;
        for (int i = 0; i < coef.length; i++) {
            long c = coef[i];
            int p = deg - i;
            if (c == 0) continue;
            String mag = (Math.abs(c) == 1 && p > 0) ? "" : Long.toString(Math.abs(c));
            String term = mag + (p == 0 ? "" : p == 1 ? "x" : "x^" + p);
            if (sb.isEmpty()) sb.append(c < 0 ? "-" : "").append(term);
            else sb.append(c < 0 ? " - " : " + ").append(term);
        }
        return sb.isEmpty() ? "0" : sb.toString();
    }

    private String polynomial() {
        switch (rng.nextInt(3)) {
            case 0 -> {
                long a = nonZero(6), b = nonZero(9), c = nonZero(6), d = nonZero(9);
                StringBuilder sb =
                        new StringBuilder("Problem: Expand (" + poly(a, b) + ")(" + poly(c, d) + ").\nSolution:\n");
                sb.append("Multiply each term: ")
                        .append(poly(a * c, 0, 0))
                        .append(" + (")
                        .append(poly(a * d, 0))
                        .append(") + (")
                        .append(poly(b * c, 0))
                        .append(") + (")
                        .append(b * d)
                        .append(").\n");
                sb.append("Combine the x terms: ")
                        .append(a * d)
                        .append(" + ")
                        .append(b * c)
                        .append(" = ")
                        .append(a * d + b * c)
                        .append(".\n");
                return sb.append("Answer: ")
                        .append(poly(a * c, a * d + b * c, b * d))
                        .append('\n')
                        .toString();
            }
            case 1 -> {
                long a = nonZero(5), b = rng.nextInt(19) - 9, c = rng.nextInt(19) - 9, x = rng.nextInt(11) - 5;
                StringBuilder sb = new StringBuilder(
                        "Problem: Evaluate p(x) = " + poly(a, b, c) + " at x = " + x + ".\nSolution:\n");
                sb.append("p(")
                        .append(x)
                        .append(") = ")
                        .append(a)
                        .append("·(")
                        .append(x)
                        .append(")^2 + ")
                        .append(b)
                        .append("·(")
                        .append(x)
                        .append(") + ")
                        .append(c)
                        .append(".\n");
                sb.append("= ")
                        .append(a * x * x)
                        .append(" + ")
                        .append(b * x)
                        .append(" + ")
                        .append(c)
                        .append(".\n");
                return sb.append("Answer: ")
                        .append(a * x * x + b * x + c)
                        .append('\n')
                        .toString();
            }
            default -> {
                long[] p = {nonZero(7), rng.nextInt(15) - 7, rng.nextInt(15) - 7};
                long[] q = {nonZero(7), rng.nextInt(15) - 7, rng.nextInt(15) - 7};
                boolean add = rng.nextBoolean();
                long[] r = new long[3];
                for (int i = 0; i < 3; i++) r[i] = add ? p[i] + q[i] : p[i] - q[i];
                StringBuilder sb = new StringBuilder("Problem: Simplify (" + poly(p) + ") " + (add ? "+" : "-") + " ("
                        + poly(q) + ").\nSolution:\n");
                String[] names = {"x^2", "x", "constant"};
                for (int i = 0; i < 3; i++) {
                    sb.append(names[i])
                            .append(" terms: ")
                            .append(p[i])
                            .append(add ? " + " : " - ")
                            .append("(")
                            .append(q[i])
                            .append(") = ")
                            .append(r[i])
                            .append(".\n");
                }
                return sb.append("Answer: ").append(poly(r)).append('\n').toString();
            }
        }
    }

    // ------------------------------------------------------------------ word problems

    private String wordProblem() {
        String who = NAMES[rng.nextInt(NAMES.length)];
        switch (rng.nextInt(5)) {
            case 0 -> {
                String item = ITEMS[rng.nextInt(ITEMS.length)], other = ITEMS[rng.nextInt(ITEMS.length)];
                if (other.equals(item)) other = "pens";
                int n1 = 2 + rng.nextInt(9), p1 = 1 + rng.nextInt(12), n2 = 1 + rng.nextInt(6), p2 = 1 + rng.nextInt(9);
                return "Problem: " + who + " buys " + n1 + " " + item + " at $" + p1 + " each and " + n2 + " " + other
                        + " at $" + p2 + " each. How much does " + who + " spend in total?\nSolution:\n"
                        + "The " + item + " cost " + n1 + " × " + p1 + " = " + n1 * p1 + " dollars.\n"
                        + "The " + other + " cost " + n2 + " × " + p2 + " = " + n2 * p2 + " dollars.\n"
                        + "Together: " + n1 * p1 + " + " + n2 * p2 + " = " + (n1 * p1 + n2 * p2) + " dollars.\n"
                        + "Answer: $" + (n1 * p1 + n2 * p2) + "\n";
            }
            case 1 -> {
                int speed = 10 * (3 + rng.nextInt(10)), hours = 1 + rng.nextInt(6);
                return "Problem: A train travels at " + speed + " km/h for " + hours + " hours. How far does it go?\n"
                        + "Solution:\nDistance = speed × time = " + speed + " × " + hours + " = " + speed * hours
                        + " km.\nAnswer: " + speed * hours + " km\n";
            }
            case 2 -> {
                int l = 2 + rng.nextInt(19), w = 1 + rng.nextInt(15);
                return "Problem: A rectangle is " + l + " m long and " + w + " m wide. Find its area and perimeter.\n"
                        + "Solution:\nArea = length × width = " + l + " × " + w + " = " + l * w + " square metres.\n"
                        + "Perimeter = 2 × (length + width) = 2 × (" + l + " + " + w + ") = 2 × " + (l + w) + " = "
                        + 2 * (l + w) + " m.\nAnswer: area " + l * w + " m^2, perimeter " + 2 * (l + w) + " m\n";
            }
            case 3 -> {
                int[] percents = {10, 20, 25, 30, 40, 50, 75};
                int pct = percents[rng.nextInt(percents.length)];
                int price = 20 * (1 + rng.nextInt(15));
                int off = price * pct / 100;
                return "Problem: A jacket costs $" + price + " and is on sale for " + pct + "% off. What is the sale "
                        + "price?\nSolution:\nThe discount is " + pct + "% of " + price + " = " + price + " × " + pct
                        + "/100 = " + off + " dollars.\nSale price = " + price + " - " + off + " = " + (price - off)
                        + " dollars.\nAnswer: $" + (price - off) + "\n";
            }
            default -> {
                String item = ITEMS[rng.nextInt(ITEMS.length)];
                int friends = 2 + rng.nextInt(8), each = 1 + rng.nextInt(12), left = rng.nextInt(friends);
                int total = friends * each + left;
                return "Problem: " + who + " has " + total + " " + item + " and shares them equally among " + friends
                        + " friends, keeping any that are left over. How many does each friend get, and how many are "
                        + "left?\nSolution:\n" + total + " ÷ " + friends + " = " + each + " remainder " + left
                        + ", because " + friends + " × " + each + " = " + friends * each + " and " + total + " - "
                        + friends * each + " = " + left + ".\nAnswer: " + each + " each, " + left + " left over\n";
            }
        }
    }
}
