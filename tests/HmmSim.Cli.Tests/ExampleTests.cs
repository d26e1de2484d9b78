using System.Text.Json;

namespace HmmSim.Cli.Tests;

/// <summary>Every file in examples/ runs green through `hmmsim run FILE`.</summary>
public class ExampleTests
{
    public static TheoryData<string> Examples()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Cli.ExamplesDir, "*.json").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Fact]
    public void TheRequiredExamplesExist()
    {
        foreach (var name in new[] { "seed-43bit-vm.json", "seed-arm64.json", "selftest-migrate.json", "selftest-anon-write-prot.json", "selftest-snapshot.json" })
            Assert.True(File.Exists(Path.Combine(Cli.ExamplesDir, name)), name);
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void ExampleRunsGreen(string name)
    {
        var (exit, output, error) = Cli.Run("run", Path.Combine(Cli.ExamplesDir, name), "--json");
        Assert.True(exit == 0, $"{name}: exit {exit}\n{output}\n{error}");
        using var doc = JsonDocument.Parse(output);
        Assert.True(doc.RootElement.GetProperty("passed").GetBoolean());
        foreach (var d in doc.RootElement.GetProperty("designs").EnumerateArray())
        {
            Assert.True(d.GetProperty("passed").GetBoolean(), d.GetProperty("verdict").GetString());
            Assert.True(d.GetProperty("expectationsMet").GetInt32() > 0);
        }
        Assert.Equal("", error);
    }

    [Fact]
    public void SeedVmFailsToOpenTheDeviceInTodaysDesignAndMigratesInTheRedesign()
    {
        var (exit, output, _) = Cli.Run("run", Path.Combine(Cli.ExamplesDir, "seed-43bit-vm.json"), "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var designs = doc.RootElement.GetProperty("designs").EnumerateArray().ToDictionary(d => d.GetProperty("design").GetString()!);
        var today = designs["PhysicalAddressSpace"];
        Assert.Contains("dmirror.open", today.GetProperty("stoppedAt").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, today.GetProperty("pagesToDevice").GetInt64());
        var redesign = designs["DeviceAddressSpace"];
        Assert.Equal(JsonValueKind.Null, redesign.GetProperty("stoppedAt").ValueKind);
        Assert.Equal(2048, redesign.GetProperty("pagesToDevice").GetInt64());
        Assert.True(redesign.GetProperty("pagesToRam").GetInt64() > 0);
        Assert.True(redesign.GetProperty("invariantChecks").GetInt64() > 0);
    }

    [Fact]
    public void SnapshotExampleMatchesTheSelftest()
    {
        var scenario = Scenarios.ScenarioFile.Load(Path.Combine(Cli.ExamplesDir, "selftest-snapshot.json"));
        var snap = scenario.Steps.Single(s => s.Op == "dmirror.snapshot").Expect.Snapshot!;
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0x11, 0x01, 0x02, 0x22, 0x00 }, snap);
    }
}
