using System.Text.Json;

namespace HmmSim.Cli.Tests;

/// <summary>`hmmsim explore` on a small battery (CI keeps explore's share small: whole runs are on demand).</summary>
public class ExploreCommandTests
{
    [Fact]
    public void DefaultMachinePassesTheRandomFamilyAndPrintsTheMatrix()
    {
        var (exit, output, err) = Cli.Run("explore", "--variants", "default", "--design", "both", "--families", "random", "--seeds", "2", "--steps", "40");
        Assert.True(exit == 0, output + err);
        Assert.Contains("default  today     pass 2", output, StringComparison.Ordinal);
        Assert.Contains("default  redesign  pass 2", output, StringComparison.Ordinal);
        Assert.Contains("PASS: 4 work items", output, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonHasTheDocumentedShapeAndReportIsWritten()
    {
        string html = Path.Combine(Path.GetTempPath(), $"explore-{Guid.NewGuid():N}.html");
        try
        {
            var (exit, output, err) = Cli.Run("explore", "--variant", "RmapMatch=PfnOnly", "--families", "random", "--design", "redesign", "--seeds", "1", "--steps", "20", "--json", "--report", html);
            Assert.True(exit is 0 or 1, err);
            using var doc = JsonDocument.Parse(output);
            var root = doc.RootElement;
            Assert.Equal("hmmsim-explore/1", root.GetProperty("schema").GetString());
            Assert.Equal(["random"], root.GetProperty("families").EnumerateArray().Select(f => f.GetString()!));
            var matrix = root.GetProperty("matrix").EnumerateArray().ToList();
            // --variant without --variants: the default configuration and the one asked for.
            Assert.Equal(["default", "RmapMatch=PfnOnly"], matrix.Select(r => r.GetProperty("variant").GetString()!));
            Assert.All(matrix, r => Assert.Equal("DeviceAddressSpace", r.GetProperty("design").GetString()));
            var def = matrix.First(r => r.GetProperty("variant").GetString() == "default");
            Assert.Equal("passed", def.GetProperty("cells").GetProperty("random").GetProperty("status").GetString());
            Assert.Equal(root.GetProperty("passed").GetBoolean() ? 0 : 1, exit);
            Assert.Equal(root.GetProperty("totalItems").GetInt32(), root.GetProperty("items").GetArrayLength());
            string text = File.ReadAllText(html);
            Assert.Contains("hmmsim explore", text, StringComparison.Ordinal);
            Assert.Contains("RmapMatch=PfnOnly", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(html);
        }
    }

    [Fact]
    public void ARedesignVariantUnderTodaysDesignIsSkippedWithTheReason()
    {
        var (exit, output, err) = Cli.Run("explore", "--variant", "RmapMatch=PfnOnly", "--variants", "none", "--design", "today", "--families", "random", "--seeds", "1", "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        var row = Assert.Single(doc.RootElement.GetProperty("matrix").EnumerateArray());
        Assert.Contains("RmapMatch changes the redesign's device-private address space", row.GetProperty("skipped").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, doc.RootElement.GetProperty("totalItems").GetInt32());
    }

    [Fact]
    public void TheScenarioFamilyRunsEveryExampleFile()
    {
        var builtIn = Explore.ExploreBattery.BuiltInScenarios().Select(s => s.Name).ToList();
        var files = Directory.GetFiles(Cli.ExamplesDir, "*.json").Select(f => "examples/" + Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(files, builtIn);
    }

    [Theory]
    [InlineData(new[] { "--variant", "RmapMatch=Never" }, "valid: PvmwDevicePrivate, PfnOnly")]
    [InlineData(new[] { "--variant", "Colour=Blue" }, "valid: SoftleafMigration=Consistent|AsPostedV1")]
    [InlineData(new[] { "--design", "tomorrow" }, "unknown --design")]
    [InlineData(new[] { "--families", "random,fuzz" }, "unknown check family 'fuzz'")]
    [InlineData(new[] { "--shard", "2/2" }, "need 0 <= index < count")]
    [InlineData(new[] { "--shard", "x" }, "is not K/N")]
    public void BadInputIsExitCodeTwoWithTheReason(string[] args, string message)
    {
        var (exit, _, err) = Cli.Run(["explore", .. args]);
        Assert.Equal(2, exit);
        Assert.Contains(message, err, StringComparison.Ordinal);
    }
}
