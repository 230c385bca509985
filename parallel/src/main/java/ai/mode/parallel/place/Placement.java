package ai.mode.parallel.place;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * Where each part of a MoDE model runs: devices are partitioned into groups; each block's backbone slice (with its gate
 * and the merge) and each of its experts is assigned to a group; the devices of a group hold copies of its parts and
 * split the batch between them (data parallel). Presets for the usual layouts and a textual form for custom ones; every
 * inconsistency is a one-line error naming the fix.
 *
 * <p>A placement of a MoDE model with B blocks and N experts per block on a list of devices (world ranks, in
 * order). Block i's <em>merge group</em> is the group of its backbone slice: it runs the gate and the weighted
 * merge, and its output is block i+1's input. The embedding runs on block 0's backbone group, the final norm,
 * LM head and loss on the last block's.
 *
 * <p>A group of R devices is data parallel: replica r handles batch rows {@link #rowStart} ... of every
 * micro-batch and the trainable gradients of the group's parts are all-reduced over its R devices. Groups of
 * different sizes exchange activations row range by row range.
 */
public final class Placement {
    /** A named set of devices (indices into {@link #devices()}, i.e. world ranks). */
    public record Group(String name, List<Integer> devices) {
        public Group {
            devices = List.copyOf(devices);
        }
    }

    private final List<DeviceId> devices;
    private final List<Group> groups;
    private final int numBlocks;
    private final int numExperts;
    private final int[] backbone;
    private final int[][] experts;
    private final int[] groupOf;
    private final int[] replicaOf;

    /**
     * @param backbone group of each block's backbone slice [B]
     * @param experts  group of each block's experts [B][N]
     */
    public Placement(
            List<DeviceId> devices,
            List<Group> groups,
            int numBlocks,
            int numExperts,
            int[] backbone,
            int[][] experts) {
        this.devices = List.copyOf(devices);
        this.groups = List.copyOf(groups);
        this.numBlocks = numBlocks;
        this.numExperts = numExperts;
        this.backbone = backbone.clone();
        this.experts = new int[experts.length][];
        for (int i = 0; i < experts.length; i++) this.experts[i] = experts[i].clone();
        this.groupOf = new int[devices.size()];
        this.replicaOf = new int[devices.size()];
        validate();
    }

    private void validate() {
        if (devices.isEmpty()) throw new IllegalArgumentException("a placement needs at least one device");
        if (numBlocks < 1 || numExperts < 1)
            throw new IllegalArgumentException(
                    "a placement needs B >= 1 blocks and N >= 1 experts (got " + numBlocks + ", " + numExperts + ")");
        if (groups.isEmpty()) throw new IllegalArgumentException("a placement needs at least one device group");
        if (groups.size() > devices.size()) {
            throw new IllegalArgumentException(groups.size() + " device groups need at least " + groups.size()
                    + " devices but only " + devices.size() + " are given (" + DeviceSpec.format(devices)
                    + "); use fewer --groups or more --devices");
        }
        Arrays.fill(groupOf, -1);
        for (int g = 0; g < groups.size(); g++) {
            Group grp = groups.get(g);
            if (grp.devices().isEmpty())
                throw new IllegalArgumentException(
                        "device group '" + grp.name() + "' is empty; every group needs at least one device");
            for (int k = 0; k < grp.devices().size(); k++) {
                int d = grp.devices().get(k);
                if (d < 0 || d >= devices.size()) {
                    throw new IllegalArgumentException(
                            "device group '" + grp.name() + "' names device #" + d + " but only " + devices.size()
                                    + " devices are given (" + DeviceSpec.format(devices) + ")");
                }
                if (groupOf[d] >= 0) {
                    throw new IllegalArgumentException("device " + devices.get(d) + " is in groups '"
                            + groups.get(groupOf[d]).name() + "' and '" + grp.name()
                            + "'; a device belongs to exactly one group (give one group several experts instead)");
                }
                groupOf[d] = g;
                replicaOf[d] = k;
            }
        }
        for (int d = 0; d < devices.size(); d++) {
            if (groupOf[d] < 0)
                throw new IllegalArgumentException(
                        "device " + devices.get(d) + " is in no group; drop it from --devices or add it to a group");
        }
        if (backbone.length != numBlocks)
            throw new IllegalArgumentException(
                    "the placement gives " + backbone.length + " backbone groups for " + numBlocks + " blocks");
        if (experts.length != numBlocks)
            throw new IllegalArgumentException(
                    "the placement gives expert groups for " + experts.length + " blocks, not " + numBlocks);
        boolean[] used = new boolean[groups.size()];
        for (int i = 0; i < numBlocks; i++) {
            checkGroup(backbone[i], "block " + i + "'s backbone");
            used[backbone[i]] = true;
            if (experts[i].length != numExperts)
                throw new IllegalArgumentException(
                        "block " + i + " places " + experts[i].length + " experts, not " + numExperts);
            for (int j = 0; j < numExperts; j++) {
                checkGroup(experts[i][j], "block " + i + "'s expert " + j);
                used[experts[i][j]] = true;
            }
        }
        for (int g = 0; g < groups.size(); g++) {
            if (!used[g])
                throw new IllegalArgumentException("device group '"
                        + groups.get(g).name() + "' holds no backbone slice and no expert; remove it or give it work");
        }
    }

    private void checkGroup(int g, String what) {
        if (g < 0 || g >= groups.size())
            throw new IllegalArgumentException(
                    what + " is placed on group #" + g + " but there are " + groups.size() + " groups");
    }

    // ================================================================== presets

    /** Everything on one device. */
    public static Placement single(List<DeviceId> devices, int numBlocks, int numExperts) {
        if (devices.size() != 1) {
            throw new IllegalArgumentException("--placement single runs on one device but " + devices.size()
                    + " are given (" + DeviceSpec.format(devices) + "); use --placement data or mpmd, or one device");
        }
        return data(devices, numBlocks, numExperts);
    }

    /** Every device holds the whole model and a share of the batch; trainable gradients are all-reduced. */
    public static Placement data(List<DeviceId> devices, int numBlocks, int numExperts) {
        List<Integer> all = new ArrayList<>();
        for (int d = 0; d < devices.size(); d++) all.add(d);
        int[][] ex = new int[numBlocks][numExperts];
        return new Placement(devices, List.of(new Group("all", all)), numBlocks, numExperts, new int[numBlocks], ex);
    }

    /**
     * The paper's MPMD layout: the backbone (with gates, merges, embedding and head) on the first
     * {@code backboneDevices} devices, the experts spread in contiguous runs over {@code numGroups - 1} groups
     * made of the remaining devices (split as evenly as possible); every group is data parallel over its devices.
     *
     * @param backboneDevices devices of the backbone group; 0 = half of them (at least one), leaving at least
     *                        one device per expert group
     */
    public static Placement mpmd(
            List<DeviceId> devices, int numBlocks, int numExperts, int numGroups, int backboneDevices) {
        int n = devices.size();
        if (numGroups < 2)
            throw new IllegalArgumentException(
                    "--placement mpmd needs --groups >= 2 (the backbone group and at least one expert group), got "
                            + numGroups);
        if (numGroups > n) {
            throw new IllegalArgumentException(
                    numGroups + " device groups need at least " + numGroups + " devices but only " + n + " are given ("
                            + DeviceSpec.format(devices) + "); use fewer --groups or more --devices");
        }
        int expertGroups = numGroups - 1;
        if (expertGroups > numExperts) {
            throw new IllegalArgumentException(expertGroups + " expert groups for " + numExperts
                    + " experts would leave a group idle; use --groups <= " + (numExperts + 1));
        }
        int bb = backboneDevices > 0 ? backboneDevices : Math.max(1, Math.min(n / 2, n - expertGroups));
        if (bb > n - expertGroups) {
            throw new IllegalArgumentException("--backbone-devices " + bb + " leaves " + (n - bb) + " device(s) for "
                    + expertGroups + " expert groups; use at most " + (n - expertGroups));
        }
        List<Group> groups = new ArrayList<>();
        List<Integer> bbDevs = new ArrayList<>();
        for (int d = 0; d < bb; d++) bbDevs.add(d);
        groups.add(new Group("backbone", bbDevs));
        int rest = n - bb;
        for (int g = 0; g < expertGroups; g++) {
            List<Integer> ds = new ArrayList<>();
            int lo = bb + rowStart(rest, expertGroups, g), cnt = rowCount(rest, expertGroups, g);
            for (int d = lo; d < lo + cnt; d++) ds.add(d);
            groups.add(new Group("experts-" + g, ds));
        }
        int[][] ex = new int[numBlocks][numExperts];
        for (int i = 0; i < numBlocks; i++) {
            for (int g = 0; g < expertGroups; g++) {
                int lo = rowStart(numExperts, expertGroups, g), cnt = rowCount(numExperts, expertGroups, g);
                for (int j = lo; j < lo + cnt; j++) ex[i][j] = g + 1;
            }
        }
        return new Placement(devices, groups, numBlocks, numExperts, new int[numBlocks], ex);
    }

    /**
     * A custom placement: groups separated by {@code ;}, each {@code DEVICES=ROLE[+ROLE...]} with DEVICES a
     * device list (see {@link DeviceSpec}) drawn from {@code devices}, and ROLE one of {@code backbone} (every
     * block), {@code backbone:BLOCKS}, {@code experts} (all experts of every block), {@code experts:EXPERTS}
     * (those experts of every block) or {@code experts:EXPERTS@BLOCKS}; BLOCKS and EXPERTS are {@code N} or
     * {@code A-B}. Example: {@code cpu:0-1=backbone;cpu:2=experts:0-1;cpu:3=experts:2-3}.
     */
    public static Placement parse(String spec, List<DeviceId> devices, int numBlocks, int numExperts) {
        Map<DeviceId, Integer> index = new LinkedHashMap<>();
        for (int d = 0; d < devices.size(); d++) index.put(devices.get(d), d);
        List<Group> groups = new ArrayList<>();
        int[] bb = new int[numBlocks];
        int[][] ex = new int[numBlocks][numExperts];
        Arrays.fill(bb, -1);
        for (int[] row : ex) Arrays.fill(row, -1);
        String[] parts = spec.split(";");
        for (String part : parts) {
            String p = part.strip();
            if (p.isEmpty()) continue;
            int eq = p.indexOf('=');
            if (eq <= 0)
                throw new IllegalArgumentException(
                        "placement group '" + p + "' must be DEVICES=ROLES, e.g. cuda:0-3=backbone");
            List<Integer> ds = new ArrayList<>();
            for (DeviceId d : DeviceSpec.parse(p.substring(0, eq))) {
                Integer i = index.get(d);
                if (i == null)
                    throw new IllegalArgumentException(
                            "placement names unknown device " + d + "; --devices gives " + DeviceSpec.format(devices));
                ds.add(i);
            }
            int g = groups.size();
            groups.add(new Group(p.substring(0, eq).strip(), ds));
            for (String roleRaw : p.substring(eq + 1).split("\\+")) {
                String role = roleRaw.strip().toLowerCase(Locale.ROOT);
                if (role.equals("backbone") || role.startsWith("backbone:")) {
                    int[] blocks = role.equals("backbone")
                            ? new int[] {0, numBlocks - 1}
                            : bounds(role.substring(9), numBlocks, "block", role);
                    for (int i = blocks[0]; i <= blocks[1]; i++)
                        bb[i] = assign(bb[i], g, "block " + i + "'s backbone", groups);
                } else if (role.equals("experts") || role.startsWith("experts:")) {
                    String rest = role.equals("experts") ? "" : role.substring(8);
                    String expertsPart = rest, blocksPart = "";
                    int at = rest.indexOf('@');
                    if (at >= 0) {
                        expertsPart = rest.substring(0, at);
                        blocksPart = rest.substring(at + 1);
                    }
                    int[] es = expertsPart.isEmpty()
                            ? new int[] {0, numExperts - 1}
                            : bounds(expertsPart, numExperts, "expert", role);
                    int[] blocks = blocksPart.isEmpty()
                            ? new int[] {0, numBlocks - 1}
                            : bounds(blocksPart, numBlocks, "block", role);
                    for (int i = blocks[0]; i <= blocks[1]; i++) {
                        for (int j = es[0]; j <= es[1]; j++)
                            ex[i][j] = assign(ex[i][j], g, "block " + i + "'s expert " + j, groups);
                    }
                } else {
                    throw new IllegalArgumentException("unknown placement role '" + roleRaw.strip()
                            + "'; use backbone, backbone:BLOCKS, experts, experts:EXPERTS or experts:EXPERTS@BLOCKS");
                }
            }
        }
        for (int i = 0; i < numBlocks; i++) {
            if (bb[i] < 0)
                throw new IllegalArgumentException(
                        "the placement gives block " + i + "'s backbone no group; add 'backbone' to a group");
            for (int j = 0; j < numExperts; j++) {
                if (ex[i][j] < 0)
                    throw new IllegalArgumentException("the placement gives block " + i + "'s expert " + j
                            + " no group; add 'experts' or 'experts:" + j + "' to a group");
            }
        }
        return new Placement(devices, groups, numBlocks, numExperts, bb, ex);
    }

    private static int assign(int current, int g, String what, List<Group> groups) {
        if (current >= 0 && current != g) {
            throw new IllegalArgumentException(what + " is placed on both '"
                    + groups.get(current).name() + "' and '" + groups.get(g).name() + "'");
        }
        return g;
    }

    private static int[] bounds(String s, int limit, String what, String role) {
        try {
            int dash = s.indexOf('-');
            int a = Integer.parseInt((dash < 0 ? s : s.substring(0, dash)).strip());
            int b = dash < 0 ? a : Integer.parseInt(s.substring(dash + 1).strip());
            if (a < 0 || b < a || b >= limit)
                throw new IllegalArgumentException("placement role '" + role + "' names " + what + "s " + a + ".." + b
                        + " but there are " + limit + " (0.." + (limit - 1) + ")");
            return new int[] {a, b};
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "malformed " + what + " range '" + s + "' in placement role '" + role + "'; use N or A-B");
        }
    }

    /**
     * The placement a user option names: {@code single}, {@code data}, {@code mpmd} (with {@code groups} and
     * {@code backboneDevices}) or a custom spec (see {@link #parse}).
     */
    public static Placement fromOption(
            String option, List<DeviceId> devices, int numBlocks, int numExperts, int groups, int backboneDevices) {
        return switch (option.strip().toLowerCase(Locale.ROOT)) {
            case "single" -> single(devices, numBlocks, numExperts);
            case "data", "dp", "data-parallel" -> data(devices, numBlocks, numExperts);
            case "mpmd" -> mpmd(devices, numBlocks, numExperts, groups, backboneDevices);
            default -> {
                if (!option.contains("=")) {
                    throw new IllegalArgumentException(
                            "unknown placement '" + option
                                    + "'; use single, data, mpmd, or a custom spec such as 'cuda:0-3=backbone;cuda:4-7=experts'");
                }
                yield parse(option, devices, numBlocks, numExperts);
            }
        };
    }

    // ================================================================== row sharding

    /** First row of part {@code p} when {@code rows} rows are split into {@code parts} near-equal contiguous parts. */
    public static int rowStart(int rows, int parts, int p) {
        return p * (rows / parts) + Math.min(p, rows % parts);
    }

    /** Rows of part {@code p} (the first {@code rows % parts} parts get one more). */
    public static int rowCount(int rows, int parts, int p) {
        return rows / parts + (p < rows % parts ? 1 : 0);
    }

    // ================================================================== queries

    public List<DeviceId> devices() {
        return devices;
    }

    public List<Group> groups() {
        return groups;
    }

    public int numBlocks() {
        return numBlocks;
    }

    public int numExperts() {
        return numExperts;
    }

    /** Number of world ranks (devices). */
    public int worldSize() {
        return devices.size();
    }

    /** Group of block i's backbone slice, gate and merge. */
    public int mergeGroup(int block) {
        return backbone[block];
    }

    /** Group of block i's expert j. */
    public int expertGroup(int block, int expert) {
        return experts[block][expert];
    }

    /** Group that runs the embedding (block 0's backbone group). */
    public int stemGroup() {
        return backbone[0];
    }

    /** Group that runs the final norm, LM head and loss (the last block's backbone group). */
    public int headGroup() {
        return backbone[numBlocks - 1];
    }

    /** Group that produces block i's input: the embedding's for block 0, else block i-1's merge group. */
    public int producerGroup(int block) {
        return block == 0 ? stemGroup() : mergeGroup(block - 1);
    }

    /** The group of world rank r. */
    public int groupOf(int rank) {
        return groupOf[rank];
    }

    /** The position of world rank r in its group (its data-parallel replica index). */
    public int replicaOf(int rank) {
        return replicaOf[rank];
    }

    public int groupSize(int g) {
        return groups.get(g).devices().size();
    }

    /** The world rank of replica r of group g. */
    public int rankOf(int g, int replica) {
        return groups.get(g).devices().get(replica);
    }

    /** The experts of block i on group g, ascending. */
    public int[] expertsOn(int block, int g) {
        return java.util.stream.IntStream.range(0, numExperts)
                .filter(j -> experts[block][j] == g)
                .toArray();
    }

    /** The groups holding experts of block i, ascending. */
    public int[] expertGroups(int block) {
        TreeSet<Integer> s = new TreeSet<>();
        for (int g : experts[block]) s.add(g);
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Whether block i's merge group is the only group of the block (no inter-group traffic inside it). */
    public boolean blockIsLocal(int block) {
        for (int g : experts[block]) if (g != backbone[block]) return false;
        return true;
    }

    /** A readable multi-line summary: groups with their devices and roles. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        for (int g = 0; g < groups.size(); g++) {
            Group grp = groups.get(g);
            List<DeviceId> ds = grp.devices().stream().map(devices::get).toList();
            sb.append(String.format(
                    Locale.ROOT,
                    "group %d '%s': %s (%d device%s, data parallel)",
                    g,
                    grp.name(),
                    DeviceSpec.format(ds),
                    ds.size(),
                    ds.size() == 1 ? "" : "s"));
            List<String> roles = new ArrayList<>();
            for (int i = 0; i < numBlocks; i++) {
                if (backbone[i] == g) roles.add("block " + i + " backbone+gate+merge");
                int[] es = expertsOn(i, g);
                if (es.length > 0) roles.add("block " + i + " experts " + Arrays.toString(es));
            }
            if (stemGroup() == g) roles.add("embedding");
            if (headGroup() == g) roles.add("head+loss");
            sb.append(": ").append(String.join(", ", roles)).append('\n');
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return describe();
    }
}
