using System.Text;
using System.Text.Json;
using HmmSim.Cli.Scenarios;

namespace HmmSim.Cli.Tests;

/// <summary>The inspection parts of a scenario: the "dump" op, expect.pagemap and expect.vmstat.</summary>
public class ScenarioInspectionTests
{
    private static ScenarioResult Run(string json) => ScenarioRunner.Run(ScenarioFile.Parse(Encoding.UTF8.GetBytes(json.ReplaceLineEndings("\n")), "test.json"));

    private const string MigrateTwoOfThree = """
        {
          "steps": [
            { "op": "dmirror.open", "unit": 0, "handle": "dev" },
            { "op": "mmap", "name": "buf", "length": "12KiB" },
            { "op": "fill", "at": "buf", "length": "8KiB", "pattern": "index" },
            { "op": "dmirror.migrate_to_dev", "handle": "dev", "at": "buf", "pages": 2 },
            { "op": "dump", "at": "buf", "length": "12KiB" }
          ]
        }
        """;

    [Fact]
    public void DumpShowsAPfnTodayAndADevicePrivateOffsetInTheRedesign()
    {
        var r = Run(MigrateTwoOfThree);
        Assert.True(r.Passed, string.Join("; ", r.Designs.Select(d => d.Verdict)));
        foreach (var d in r.Designs)
        {
            var dump = Assert.Single(d.Dumps);
            Assert.Equal(3, dump.Entries.Count);
            for (int i = 0; i < 2; i++)
            {
                var e = dump.Entries[i];
                Assert.Equal(dump.Address + (ulong)i * 4096, e.Address);
                Assert.Equal("pte", e.Level);
                Assert.False(e.Present);
                Assert.Equal("SWP_DEVICE_WRITE", e.Kind);
                Assert.Contains("write", e.Flags);
                Assert.NotNull(e.SwapType);
                if (d.Design == DevicePrivateDesign.PhysicalAddressSpace)
                {
                    Assert.NotNull(e.Pfn);
                    Assert.Null(e.DevicePrivateOffset);
                }
                else
                {
                    Assert.Null(e.Pfn);
                    Assert.NotNull(e.DevicePrivateOffset);
                }
            }
            // Two different device pages: the entries name different frames.
            Assert.NotEqual(dump.Entries[0].Pfn ?? dump.Entries[0].DevicePrivateOffset, dump.Entries[1].Pfn ?? dump.Entries[1].DevicePrivateOffset);
            Assert.Equal("none", dump.Entries[2].Kind);
            Assert.Equal(0UL, dump.Entries[2].Raw);
        }
        // The designs number their swap types differently (the redesign adds three migration-device types).
        Assert.NotEqual(r.Designs[0].Dumps[0].Entries[0].SwapType, r.Designs[1].Dumps[0].Entries[0].SwapType);
    }

    [Fact]
    public void DumpOfAThpReportsThePmdAndLeavesItWhole()
    {
        var r = Run("""
            {
              "machine": { "designs": "DeviceAddressSpace", "thp": "Always" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": "2MiB" },
                { "op": "write", "at": "buf", "int": 1 },
                { "op": "dump", "at": "buf", "length": "8KiB" },
                { "op": "dump", "at": "buf+0x1ff000", "length": "4KiB" }
              ]
            }
            """);
        var d = Assert.Single(r.Designs);
        Assert.True(d.Passed, d.Verdict);
        var first = d.Dumps[0].Entries;
        Assert.All(first, e => Assert.Equal("pmd", e.Level));
        Assert.All(first, e => Assert.True(e.Present));
        Assert.Equal(first[0].Pfn + 1, first[1].Pfn);
        // Still one PMD after the first dump: a dump never splits.
        var last = Assert.Single(d.Dumps[1].Entries);
        Assert.Equal("pmd", last.Level);
        Assert.Equal(first[0].Pfn + 511, last.Pfn);
    }

    [Fact]
    public void ADeviceThpIsOnePmdLevelDevicePrivateEntry()
    {
        var r = Run("""
            {
              "machine": { "thp": "Always" },
              "steps": [
                { "op": "dmirror.open", "unit": 0, "handle": "dev" },
                { "op": "mmap", "name": "buf", "length": "4MiB", "align": "2MiB" },
                { "op": "fill", "at": "buf", "length": "2MiB", "pattern": "index" },
                { "op": "dmirror.migrate_to_dev", "handle": "dev", "at": "buf", "pages": 512,
                  "expect": { "pagemap": { "swapped": true } } },
                { "op": "dump", "at": "buf", "length": "8KiB" },
                { "op": "dump", "at": "buf+0x200000", "length": "4KiB" }
              ]
            }
            """);
        Assert.True(r.Passed, string.Join("; ", r.Designs.Select(d => d.Verdict)));
        foreach (var d in r.Designs)
        {
            var e = d.Dumps[0].Entries;
            Assert.All(e, x => Assert.Equal("pmd", x.Level));
            Assert.All(e, x => Assert.Equal("SWP_DEVICE_WRITE", x.Kind));
            // One entry for the whole THP: the same raw PMD, each page its own frame within it.
            Assert.Equal(e[0].Raw, e[1].Raw);
            ulong first = (e[0].Pfn ?? e[0].DevicePrivateOffset)!.Value, second = (e[1].Pfn ?? e[1].DevicePrivateOffset)!.Value;
            Assert.Equal(first + 1, second);
            Assert.Equal(d.Design == DevicePrivateDesign.DeviceAddressSpace, e[0].DevicePrivateOffset is not null);
            // Past the THP, the untouched half of the mapping has no entry.
            Assert.Equal("none", Assert.Single(d.Dumps[1].Entries).Kind);
        }
    }

    [Fact]
    public void PagemapExpectationFailureNamesThePageAndTheField()
    {
        var r = Run("""
            {
              "machine": { "designs": "DeviceAddressSpace" },
              "steps": [
                { "op": "mmap", "name": "buf", "length": "8KiB" },
                { "op": "write", "at": "buf", "int": 1, "expect": { "pagemap": { "present": true, "pfn": "nonzero" } } },
                { "op": "fill", "at": "buf", "length": "8KiB", "pattern": "constant", "value": 0,
                  "expect": { "pagemap": { "swapped": false } } },
                { "op": "madvise", "at": "buf+0x1000", "length": 4096, "advice": "DontNeed", "expect": { "pagemap": { "present": true } } }
              ]
            }
            """);
        var d = Assert.Single(r.Designs);
        var f = d.Failure!;
        Assert.Equal("4", f.Step);
        Assert.Equal("expectation", f.Kind);
        Assert.Equal("True", f.Expected);
        Assert.Equal("False", f.Actual);
        Assert.Contains("pagemap of buf+0x1000", f.Message, StringComparison.Ordinal);
        Assert.Contains("present", f.Message, StringComparison.Ordinal);
        Assert.Equal(2, d.ExpectationsMet);
    }

    [Fact]
    public void VmStatExpectationIsTheChangeOverTheStep()
    {
        var r = Run("""
            {
              "machine": { "designs": "PhysicalAddressSpace" },
              "steps": [
                { "op": "dmirror.open", "unit": 0, "handle": "dev" },
                { "op": "mmap", "name": "buf", "length": "16KiB" },
                { "op": "fill", "at": "buf", "length": "16KiB", "pattern": "index" },
                { "op": "dmirror.migrate_to_dev", "handle": "dev", "at": "buf", "pages": 4,
                  "expect": { "vmstat": { "device_migrate_to_device": 4 } } },
                { "op": "dmirror.migrate_to_sys", "handle": "dev", "at": "buf", "pages": 4,
                  "expect": { "vmstat": { "device_migrate_to_device": 0, "device_migrate_to_ram": 3 } } }
              ]
            }
            """);
        var f = Assert.Single(r.Designs).Failure!;
        Assert.Equal("5", f.Step);
        Assert.Equal("+3", f.Expected);
        Assert.Equal("+4", f.Actual);
        Assert.Contains("vmstat device_migrate_to_ram over the step (0 before, 4 after)", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownVmStatCounterIsAFileError()
    {
        string path = Cli.TempScenario("""
            {
              "steps": [
                { "op": "mmap", "name": "buf", "length": 4096,
                  "expect": { "vmstat": { "device_migrate_to_rma": 1 } } }
              ]
            }
            """);
        var (exit, output, error) = Cli.Run("run", path);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"hmmsim run: {path}:4:31: ", error, StringComparison.Ordinal);
        Assert.Contains("unknown counter \"device_migrate_to_rma\"", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "op": "fork", "child": "c", "expect": { "pagemap": { "present": true } } }""", "expect.pagemap applies only to steps with an \"at\"")]
    [InlineData("""{ "op": "dump", "at": "buf", "length": "32MiB" }""", "at most 4096 pages")]
    [InlineData("""{ "op": "dump", "at": "buf", "length": 4096, "expect": { "pagemap": { "pfn": "some" } } }""", "pagemap.pfn is \"nonzero\" or a number, not \"some\"")]
    [InlineData("""{ "op": "dump", "at": "buf", "length": 4096, "expect": { "pagemap": { "mapped": true } } }""", "unknown field \"mapped\"")]
    public void BadInspectionFieldsAreFileErrors(string step, string problem)
    {
        string path = Cli.TempScenario($$"""
            {
              "steps": [
                { "op": "mmap", "name": "buf", "length": "64MiB" },
                {{step}}
              ]
            }
            """);
        var (exit, _, error) = Cli.Run("run", path);
        Assert.Equal(2, exit);
        Assert.StartsWith($"hmmsim run: {path}:4:", error, StringComparison.Ordinal);
        Assert.Contains(problem, error, StringComparison.Ordinal);
    }

    [Fact]
    public void DumpIsPrintedAsTextAndInTheJson()
    {
        string path = Cli.TempScenario(MigrateTwoOfThree);
        var (exit, output, _) = Cli.Run("run", path);
        Assert.Equal(0, exit);
        Assert.Contains("dump at step 5 (line 7), buf, 3 pages, PhysicalAddressSpace:", output, StringComparison.Ordinal);
        Assert.Contains("buf+0x1000", output, StringComparison.Ordinal);
        Assert.Contains("SWP_DEVICE_WRITE", output, StringComparison.Ordinal);
        Assert.Contains("dev-offset=0x", output, StringComparison.Ordinal);

        (exit, output, _) = Cli.Run("run", path, "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var designs = doc.RootElement.GetProperty("designs");
        var pages = designs[1].GetProperty("dumps")[0].GetProperty("pages");
        Assert.Equal(3, pages.GetArrayLength());
        Assert.Equal("SWP_DEVICE_WRITE", pages[0].GetProperty("kind").GetString());
        Assert.StartsWith("0x", pages[0].GetProperty("devicePrivateOffset").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, pages[0].GetProperty("pfn").ValueKind);
        Assert.Equal("none", pages[2].GetProperty("kind").GetString());
    }
}
