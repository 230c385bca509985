// Device lists and placements: parsing, the presets' layouts (the paper's 1/3/5-group configurations), row
// sharding, and a one-line error naming the fix for each inconsistency.
package ai.mode.tests.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.parallel.place.DeviceId;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.place.Placement;
import java.util.List;
import org.junit.jupiter.api.Test;

class PlacementTest {

    private static void fails(String expected, Runnable r) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(
                e.getMessage().contains(expected),
                "message '" + e.getMessage() + "' should contain '" + expected + "'");
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void deviceListsParse() {
        assertEquals(
                List.of(new DeviceId("cpu", 0), new DeviceId("cpu", 1), new DeviceId("cpu", 2), new DeviceId("cpu", 3)),
                DeviceSpec.parse("cpu:0-3"));
        assertEquals(
                List.of(
                        new DeviceId("cuda", 0),
                        new DeviceId("cuda", 2),
                        new DeviceId("cuda", 4),
                        new DeviceId("cuda", 5)),
                DeviceSpec.parse("cuda:0,2,4-5"));
        assertEquals(
                List.of(new DeviceId("cpu", 0), new DeviceId("cpu", 1), new DeviceId("emu", 0)),
                DeviceSpec.parse(" cpu:0-1 , emu "));
        assertEquals(List.of(new DeviceId("emu", 1)), DeviceSpec.parse("EMU:1"));
        assertEquals("cuda:0-3,cuda:6,cpu:0", DeviceSpec.format(DeviceSpec.parse("cuda:0-3,6,cpu:0")));
        fails("unknown device kind 'gpu'", () -> DeviceSpec.parse("gpu:0-3"));
        fails("needs a kind", () -> DeviceSpec.parse("0-3"));
        fails("runs backwards", () -> DeviceSpec.parse("cpu:3-0"));
        fails("listed twice", () -> DeviceSpec.parse("cpu:0-2,1"));
        fails("malformed device item 'cpu:x'", () -> DeviceSpec.parse("cpu:x"));
        fails("empty device list", () -> DeviceSpec.parse(" "));
        fails("has no number", () -> DeviceSpec.parse("cuda:"));
    }

    @Test
    void presetsLayOutThePapersConfigurations() {
        List<DeviceId> eight = DeviceSpec.parse("cuda:0-7");
        Placement mesh = Placement.data(eight, 2, 4);
        assertEquals(1, mesh.groups().size());
        assertEquals(8, mesh.groupSize(0));
        Placement three = Placement.mpmd(eight, 2, 4, 3, 4);
        assertEquals(List.of(0, 1, 2, 3), three.groups().get(0).devices());
        assertEquals(List.of(4, 5), three.groups().get(1).devices());
        assertEquals(List.of(6, 7), three.groups().get(2).devices());
        assertArrayEquals(new int[] {0, 1}, three.expertsOn(1, 1));
        assertArrayEquals(new int[] {2, 3}, three.expertsOn(1, 2));
        assertArrayEquals(new int[] {1, 2}, three.expertGroups(0));
        Placement five = Placement.mpmd(eight, 2, 4, 5, 0); // default: half the devices for the backbone
        assertEquals(4, five.groupSize(0));
        for (int g = 1; g < 5; g++) {
            assertEquals(1, five.groupSize(g));
            assertArrayEquals(new int[] {g - 1}, five.expertsOn(0, g));
        }
        assertEquals(0, five.stemGroup());
        assertEquals(0, five.headGroup());
        assertEquals(4, five.groupOf(7));
        assertEquals(2, five.replicaOf(2));
        assertTrue(
                five.describe()
                        .contains(
                                "group 1 'experts-0': cuda:4 (1 device, data parallel): block 0 experts [0], block 1 experts [0]"),
                five.describe());
        Placement one = Placement.single(DeviceSpec.parse("cpu:0"), 3, 2);
        assertTrue(one.blockIsLocal(2));
        assertEquals(Placement.fromOption("mpmd", eight, 2, 4, 3, 4).describe(), three.describe());
    }

    @Test
    void customPlacementsParse() {
        List<DeviceId> four = DeviceSpec.parse("cpu:0-3");
        Placement p = Placement.parse(
                "cpu:0=backbone:0+experts:2@0; cpu:1=backbone:1; cpu:2-3=experts:0-1+experts:2@1", four, 2, 3);
        assertEquals(0, p.producerGroup(0));
        assertEquals(0, p.producerGroup(1));
        assertEquals(1, p.mergeGroup(1));
        assertEquals(1, p.headGroup());
        assertArrayEquals(new int[] {2}, p.expertsOn(0, 0));
        assertArrayEquals(new int[] {0, 1, 2}, p.expertsOn(1, 2));
        fails(
                "unknown device cpu:7; --devices gives cpu:0-3",
                () -> Placement.parse("cpu:7=backbone+experts", four, 2, 3));
        fails(
                "block 1's expert 2 no group",
                () -> Placement.parse("cpu:0-1=backbone+experts:0-1;cpu:2-3=experts:2@0", four, 2, 3));
        fails("unknown placement role 'heads'", () -> Placement.parse("cpu:0-3=heads", four, 2, 3));
        fails("names experts 0..5 but there are 3", () -> Placement.parse("cpu:0-3=backbone+experts:0-5", four, 2, 3));
        fails("placed on both", () -> Placement.parse("cpu:0-1=backbone+experts;cpu:2-3=experts:1", four, 2, 3));
        fails("unknown placement 'pipeline'", () -> Placement.fromOption("pipeline", four, 2, 3, 2, 0));
    }

    @Test
    void inconsistentPlacementsAreClearErrors() {
        List<DeviceId> four = DeviceSpec.parse("cpu:0-3");
        fails(
                "5 device groups need at least 5 devices but only 4 are given (cpu:0-3)",
                () -> Placement.mpmd(four, 2, 4, 5, 0));
        fails(
                "device group 'x' is empty",
                () -> new Placement(
                        four,
                        List.of(new Placement.Group("all", List.of(0, 1, 2, 3)), new Placement.Group("x", List.of())),
                        1,
                        1,
                        new int[] {0},
                        new int[][] {{1}}));
        fails(
                "device cpu:1 is in groups 'a' and 'b'",
                () -> new Placement(
                        four,
                        List.of(new Placement.Group("a", List.of(0, 1)), new Placement.Group("b", List.of(1, 2, 3))),
                        1,
                        1,
                        new int[] {0},
                        new int[][] {{1}}));
        fails(
                "names device #9",
                () -> new Placement(
                        four,
                        List.of(new Placement.Group("a", List.of(0, 1, 2, 3, 9))),
                        1,
                        1,
                        new int[] {0},
                        new int[][] {{0}}));
        fails(
                "device cpu:3 is in no group",
                () -> new Placement(
                        four, List.of(new Placement.Group("a", List.of(0, 1, 2))), 1, 1, new int[] {0}, new int[][] {{0}
                        }));
        fails(
                "holds no backbone slice and no expert",
                () -> new Placement(
                        four,
                        List.of(new Placement.Group("a", List.of(0, 1)), new Placement.Group("b", List.of(2, 3))),
                        1,
                        1,
                        new int[] {0},
                        new int[][] {{0}}));
        fails("--placement single runs on one device but 4 are given", () -> Placement.single(four, 2, 3));
        fails("would leave a group idle", () -> Placement.mpmd(four, 2, 2, 4, 1));
        fails("--backbone-devices 3 leaves 1 device(s) for 2 expert groups", () -> Placement.mpmd(four, 2, 4, 3, 3));
        fails("needs --groups >= 2", () -> Placement.mpmd(four, 2, 4, 1, 0));
    }

    @Test
    void rowsSplitEvenlyAndContiguously() {
        for (int rows = 1; rows <= 9; rows++) {
            for (int parts = 1; parts <= rows; parts++) {
                int next = 0;
                for (int p = 0; p < parts; p++) {
                    assertEquals(next, Placement.rowStart(rows, parts, p));
                    int c = Placement.rowCount(rows, parts, p);
                    assertTrue(c == rows / parts || c == rows / parts + 1);
                    next += c;
                }
                assertEquals(rows, next);
            }
        }
    }
}
