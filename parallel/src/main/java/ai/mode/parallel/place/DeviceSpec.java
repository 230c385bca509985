package ai.mode.parallel.place;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Parsing of device lists as users type them on the command line: cpu:0-3, emu:0-1, cuda:0-7, cuda:0,2,4-5, or several
 * kinds at once (cpu:0-1,emu:0). Static parser of device lists.
 */
public final class DeviceSpec {
    private DeviceSpec() {}

    /**
     * Parses a comma-separated list of items {@code KIND:N}, {@code KIND:A-B}, or a bare {@code N} / {@code A-B}
     * continuing the previous item's kind; a bare {@code KIND} means {@code KIND:0}. Order is kept (it is the
     * rank order); a device listed twice is an error.
     */
    public static List<DeviceId> parse(String spec) {
        if (spec == null || spec.isBlank())
            throw new IllegalArgumentException("empty device list; give e.g. --devices cpu:0-3 or cuda:0-7");
        List<DeviceId> out = new ArrayList<>();
        Set<DeviceId> seen = new LinkedHashSet<>();
        String kind = null;
        for (String raw : spec.split(",")) {
            String item = raw.strip();
            if (item.isEmpty()) throw new IllegalArgumentException("empty item in device list '" + spec + "'");
            String range = item;
            int colon = item.indexOf(':');
            if (colon >= 0) {
                kind = item.substring(0, colon).strip();
                range = item.substring(colon + 1).strip();
                if (range.isEmpty())
                    throw new IllegalArgumentException(
                            "device item '" + item + "' has no number after ':'; e.g. " + kind + ":0-3");
            } else if (DeviceId.KINDS.contains(item.toLowerCase(java.util.Locale.ROOT))) {
                kind = item;
                range = "0";
            } else if (kind == null) {
                throw new IllegalArgumentException("device item '" + item + "' needs a kind: write cpu:" + item
                        + ", emu:" + item + " or cuda:" + item);
            }
            int[] bounds = range(item, range);
            for (int o = bounds[0]; o <= bounds[1]; o++) {
                DeviceId d = new DeviceId(kind, o);
                if (!seen.add(d))
                    throw new IllegalArgumentException("device " + d + " is listed twice in '" + spec + "'");
                out.add(d);
            }
        }
        return List.copyOf(out);
    }

    private static int[] range(String item, String range) {
        try {
            int dash = range.indexOf('-');
            if (dash < 0) {
                int v = Integer.parseInt(range);
                return new int[] {v, v};
            }
            int a = Integer.parseInt(range.substring(0, dash).strip()),
                    b = Integer.parseInt(range.substring(dash + 1).strip());
            if (b < a)
                throw new IllegalArgumentException(
                        "device range '" + item + "' runs backwards; write the smaller number first");
            if (b - a >= 4096) throw new IllegalArgumentException("device range '" + item + "' is implausibly large");
            return new int[] {a, b};
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "malformed device item '" + item + "'; use KIND:N or KIND:A-B, e.g. cuda:0-7");
        }
    }

    /** The compact form of a list: {@code cpu:0-3,emu:0}. */
    public static String format(List<DeviceId> devices) {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (i < devices.size()) {
            DeviceId a = devices.get(i);
            int j = i;
            while (j + 1 < devices.size()
                    && devices.get(j + 1).kind().equals(a.kind())
                    && devices.get(j + 1).ordinal() == devices.get(j).ordinal() + 1) j++;
            if (sb.length() > 0) sb.append(',');
            sb.append(a);
            if (j > i) sb.append('-').append(devices.get(j).ordinal());
            i = j + 1;
        }
        return sb.toString();
    }
}
