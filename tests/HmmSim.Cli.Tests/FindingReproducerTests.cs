using System.Text.Json;
using System.Text.Json.Nodes;

namespace HmmSim.Cli.Tests;

/// <summary>The reproducers of examples/findings/, one per design variant that breaks a check
/// (docs/findings.md): shrunk by `hmmsim explore --out`, or written by hand where the random family
/// does not reach the trigger (RmapMatch). Each replays under `hmmsim run` to the recorded failure, and
/// the same steps on a machine without the variant pass: that second half is what makes the file a
/// finding about the variant rather than about the sequence.</summary>
public class FindingReproducerTests
{
    private static string FindingsDir => Path.Combine(Cli.ExamplesDir, "findings");

    /// <summary>File, the design it names, and the recorded failure: its kind, operation and a part of its
    /// message that names the check.</summary>
    public static TheoryData<string, string, string, string> Reproducers() => new()
    {
        { "SoftleafMigration_AsPostedV1.json", "DeviceAddressSpace", "dmirror.migrate_to_sys", "__folio_add_anon_rmap: folio pfn" },
        { "RmapMatch_PfnOnly.json", "DeviceAddressSpace", "dmirror.close", "folio_remove_rmap_ptes: mapcount of page dpi" },
        { "PgmapPlacement_PageUnion.json", "PhysicalAddressSpace", "dmirror.snapshot", "reads a word compound_head overwrote" },
    };

    [Fact]
    public void EveryFileInFindingsIsListed()
    {
        var listed = Reproducers().Select(r => (string)r[0]).Order(StringComparer.Ordinal);
        var files = Directory.GetFiles(FindingsDir, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(listed, files);
    }

    [Theory]
    [MemberData(nameof(Reproducers))]
    public void TheReproducerFailsWithTheRecordedCheck(string name, string design, string op, string check)
    {
        var (exit, output, _) = Cli.Run("run", Path.Combine(FindingsDir, name), "--json");
        Assert.Equal(1, exit);
        using var doc = JsonDocument.Parse(output);
        var d = doc.RootElement.GetProperty("designs")[0];
        Assert.Equal(design, d.GetProperty("design").GetString());
        var failure = d.GetProperty("failure");
        Assert.Equal("kernel-bug", failure.GetProperty("kind").GetString());
        Assert.Equal(op, failure.GetProperty("op").GetString());
        Assert.Contains(check, failure.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Reproducers))]
    public void WithoutTheVariantTheSameStepsPass(string name, string design, string op, string check)
    {
        _ = (op, check);
        var scenario = JsonNode.Parse(File.ReadAllText(Path.Combine(FindingsDir, name)))!.AsObject();
        var machine = scenario["machine"]!.AsObject();
        Assert.NotNull(machine["variants"]);
        Assert.True(machine.Remove("variants"));
        var (exit, output, error) = Cli.Run("run", Cli.TempScenario(scenario.ToJsonString()), "--json");
        Assert.True(exit == 0, $"{name} without its variant: exit {exit}\n{output}\n{error}");
        using var doc = JsonDocument.Parse(output);
        var d = doc.RootElement.GetProperty("designs")[0];
        Assert.Equal(design, d.GetProperty("design").GetString());
        Assert.True(d.GetProperty("passed").GetBoolean(), d.GetProperty("verdict").GetString());
    }
}
