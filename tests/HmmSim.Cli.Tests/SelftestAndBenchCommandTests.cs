using System.Text.Json;

namespace HmmSim.Cli.Tests;

/// <summary>`hmmsim selftest` and `hmmsim bench ...` in-process: exit codes, TAP and JSON shapes, bad input.</summary>
public class SelftestAndBenchCommandTests
{
    [Fact]
    public void SelftestPrintsKselftestTapForTheFilteredCases()
    {
        var (exit, output, _) = Cli.Run("selftest", "--design", "DeviceAddressSpace", "--filter", "hmm_device_private.open_close");
        Assert.Equal(0, exit);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("TAP version 13", lines[0]);
        Assert.StartsWith("# machine: ", lines[1], StringComparison.Ordinal);
        Assert.Equal("1..1", lines[2]);
        Assert.Equal("ok 1 DeviceAddressSpace.hmm.hmm_device_private.open_close", lines[3]);
        Assert.StartsWith("# Totals: pass:1 fail:0", lines[4], StringComparison.Ordinal);
    }

    [Fact]
    public void SelftestJsonHasTotalsAndEveryCase()
    {
        var (exit, output, _) = Cli.Run("selftest", "--filter", "hmm2_device_private.snapshot", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(2, doc.RootElement.GetProperty("total").GetInt32());
        Assert.Equal(0, doc.RootElement.GetProperty("fail").GetInt32());
        Assert.All(doc.RootElement.GetProperty("cases").EnumerateArray(), c => Assert.True(c.GetProperty("ok").GetBoolean()));
    }

    [Fact]
    public void SelftestListsEveryCase()
    {
        var (exit, output, _) = Cli.Run("selftest", "--list");
        Assert.Equal(0, exit);
        Assert.Equal(152, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Theory]
    [InlineData("selftest", "--design", "Bogus")]
    [InlineData("selftest", "--filter", "no-such-test")]
    [InlineData("bench", "mm", "--size-mib", "3")]
    [InlineData("bench", "migrate", "--iterations", "0")]
    [InlineData("bench", "fault", "--design", "Bogus")]
    [InlineData("bench", "p2p", "--size-mib", "0")]
    [InlineData("bench", "register", "--size-gib", "0")]
    [InlineData("bench", "mm", "--no-such-option")]
    [InlineData("bench", "fault", "--size-mib", "99999999999")]
    [InlineData("bench", "fault", "--size", "99999999999TiB")]
    [InlineData("bench", "register", "--size", "17TiB")]
    [InlineData("bench", "scale", "--working-set-gib", "0")]
    [InlineData("bench", "scale", "--working-set-gib", "1", "--window-mib", "3")]
    [InlineData("bench", "scale", "--working-set-gib", "1", "--window-mib", "0")]
    [InlineData("bench", "scale", "--working-set", "3MiB")]
    [InlineData("bench", "scale", "--working-set", "2TiB")]
    [InlineData("bench", "scale", "--working-set", "1GiB", "--window", "3MiB")]
    [InlineData("bench", "scale", "--working-set", "1GiB", "--window", "2GiB")]
    [InlineData("bench", "scale", "--design", "tomorrow")]
    public void BadInputExitsTwoWithOneMessage(params string[] args)
    {
        var (exit, output, error) = Cli.Run(args);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("hmmsim ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void BenchMmJsonNamesEveryFigure()
    {
        var (exit, output, _) = Cli.Run("bench", "mm", "--size", "8MiB", "--iterations", "2", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var figures = doc.RootElement.GetProperty("figures");
        var names = figures.EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
        Assert.Contains(names, n => n!.StartsWith("anon write faults, 4 KiB", StringComparison.Ordinal));
        Assert.Contains(names, n => n!.StartsWith("model metadata per mapped 4 KiB page", StringComparison.Ordinal));
        Assert.All(figures.EnumerateArray(), f => Assert.True(f.GetProperty("value").GetDouble() > 0));
        Assert.All(figures.EnumerateArray(), f => Assert.True(f.GetProperty("min").GetDouble() <= f.GetProperty("value").GetDouble()
            && f.GetProperty("value").GetDouble() <= f.GetProperty("max").GetDouble()));
        Assert.Contains("cores", doc.RootElement.GetProperty("host").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void BenchFaultJsonReportsBothThroughputs()
    {
        var (exit, output, _) = Cli.Run("bench", "fault", "--size-mib", "8", "--iterations", "2", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var d = doc.RootElement.GetProperty("designs")[0];
        Assert.True(d.GetProperty("snapshotIoctlPagesPerSec").GetDouble() > 0);
        Assert.True(d.GetProperty("hmmRangeFaultPagesPerSec").GetDouble() > 0);
    }

    [Fact]
    public void BenchFaultJsonReportsTheRawPteScanBesideTheCallForEachDesign()
    {
        var (exit, output, _) = Cli.Run("bench", "fault", "--size", "4MiB", "--iterations", "1", "--design", "both", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var designs = doc.RootElement.GetProperty("designs").EnumerateArray().ToList();
        Assert.Equal(2, designs.Count);
        foreach (var d in designs)
        {
            double raw = d.GetProperty("rawPteScanPagesPerSec").GetDouble(), call = d.GetProperty("hmmRangeFaultPagesPerSec").GetDouble();
            Assert.True(raw > 0);
            Assert.True(d.GetProperty("rawPteScanMin").GetDouble() > 0);
            Assert.True(d.GetProperty("rawPteScanMax").GetDouble() > 0);
            // One round: the ratio is that round's call over that round's scan, and its spread is itself.
            double ratio = d.GetProperty("hmmRangeFaultOfRawScan").GetDouble();
            Assert.Equal(call / raw, ratio, 1e-9);
            Assert.Equal(ratio, d.GetProperty("hmmRangeFaultOfRawScanMin").GetDouble());
            Assert.Equal(ratio, d.GetProperty("hmmRangeFaultOfRawScanMax").GetDouble());
        }
    }

    [Fact]
    public void BenchP2pJsonShowsTheAliasAvoidingRamOnlyBehindACommonSwitch()
    {
        var (exit, output, _) = Cli.Run("bench", "p2p", "--size-mib", "1", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);
        Assert.All(rows, r => Assert.True(r.GetProperty("dataOk").GetBoolean()));
        var alias = rows.Single(r => r.GetProperty("mode").GetString() == "ALLOW_P2P" && r.GetProperty("topology").GetString() == "CommonSwitch");
        Assert.Equal(0, alias.GetProperty("bytesThroughRam").GetInt64());
        Assert.Equal(1L << 20, alias.GetProperty("bytesOverAlias").GetInt64());
        var refused = rows.Single(r => r.GetProperty("mode").GetString() == "ALLOW_P2P" && r.GetProperty("topology").GetString() == "SeparateRootPorts");
        Assert.Equal(0, refused.GetProperty("bytesOverAlias").GetInt64());
    }

    [Fact]
    public void BenchRegisterJsonShowsNoModelBytesForATebibyte()
    {
        var (exit, output, _) = Cli.Run("bench", "register", "--size-gib", "1024", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.All(doc.RootElement.GetProperty("rows").EnumerateArray(), r =>
        {
            Assert.Equal("None", r.GetProperty("error").GetString());
            Assert.Equal(0, r.GetProperty("modelBytes").GetInt64());
            Assert.Equal(16L << 30, r.GetProperty("kernelStructPageBytes").GetInt64());
        });
    }

    [Fact]
    public void BenchMigrateJsonHasEverySizeWithAndWithoutThp()
    {
        var (exit, output, _) = Cli.Run("bench", "migrate", "--iterations", "1", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.True(doc.RootElement.GetProperty("memcpyGBs").GetDouble() > 0);
        Assert.Equal(14, doc.RootElement.GetProperty("designs")[0].GetProperty("rows").GetArrayLength());
        foreach (var row in doc.RootElement.GetProperty("designs")[0].GetProperty("rows").EnumerateArray())
        {
            // The time beyond the copies per page, from the same round's figures: sys->dev less two
            // memcpys, dev->sys less one (one round: the median is that round).
            double perPage = 1e6 / (row.GetProperty("bytes").GetUInt64() >> 12);
            double memcpy = row.GetProperty("memcpyMs").GetDouble();
            Assert.Equal((row.GetProperty("sysToDevMs").GetDouble() - 2 * memcpy) * perPage, row.GetProperty("sysToDevBookkeepingNsPerPage").GetDouble(), 6);
            Assert.Equal((row.GetProperty("devToSysMs").GetDouble() - memcpy) * perPage, row.GetProperty("devToSysBookkeepingNsPerPage").GetDouble(), 6);
            Assert.Equal(row.GetProperty("devToSysBookkeepingNsPerPage").GetDouble(), row.GetProperty("devToSysBookkeepingNsPerPageMax").GetDouble());
        }
    }

    [Theory]
    [InlineData("bench", "register", "--size", "1GiB")]
    [InlineData("bench", "fault", "--size", "4MiB", "--iterations", "1")]
    [InlineData("bench", "p2p", "--size-mib", "1")]
    [InlineData("bench", "scale", "--working-set", "1GiB")]
    [InlineData("bench", "checks")]
    public void EveryBenchTableNamesTheComputerAndTheModelMachine(params string[] args)
    {
        var (exit, output, _) = Cli.Run(args);
        Assert.Equal(0, exit);
        Assert.Contains("host: ", output);
        Assert.Contains(".NET ", output);
        Assert.Contains("model machine: ", output);
    }

    [Theory]
    [InlineData("--window", "4MiB")]
    [InlineData("--window-mib", "4")]   // the old flag, kept as a hidden alias
    public void BenchScaleTakesSizesWithUnitsAndADesign(string windowFlag, string window)
    {
        var (exit, output, _) = Cli.Run("bench", "scale", "--working-set", "6MiB", windowFlag, window, "--design", "redesign", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(4UL << 20, doc.RootElement.GetProperty("windowBytes").GetUInt64());
        Assert.All(doc.RootElement.GetProperty("registrations").EnumerateArray(), x => Assert.Equal("DeviceAddressSpace", x.GetProperty("design").GetString()));
        var migrations = doc.RootElement.GetProperty("migrations").EnumerateArray().ToList();
        Assert.Equal("DeviceAddressSpace", Assert.Single(migrations).GetProperty("design").GetString());
        foreach (var m in migrations)
        {
            Assert.Equal(6UL << 20, m.GetProperty("workingSetBytes").GetUInt64());
            // A whole window and a half one, every page checked on the device and back in RAM.
            Assert.Equal(2 * 1536UL, m.GetProperty("pagesVerified").GetUInt64());
        }
    }

    [Fact]
    public void BenchChecksJsonReportsBothSidesOfTheSameRunAndTheFullWalk()
    {
        string html = Path.Combine(Path.GetTempPath(), $"bench-checks-{Guid.NewGuid():N}.html");
        var (exit, output, _) = Cli.Run("bench", "checks", "--json", "--report", html);
        Assert.Equal(0, exit);
        string text = File.ReadAllText(html);
        File.Delete(html);
        Assert.Contains("hmmsim bench checks", text, StringComparison.Ordinal);
        Assert.Contains("model machine: x86-64, 46-bit physical, 1 TiB RAM", text, StringComparison.Ordinal);
        Assert.Contains("full walk (teardown, on demand), ms: median of five", text, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Contains(".NET", root.GetProperty("host").GetString(), StringComparison.Ordinal);
        Assert.Equal("x86-64, 46-bit physical, 1 TiB RAM, no PCI window", root.GetProperty("machine").GetString());
        Assert.Equal(1UL << 40, root.GetProperty("ramBytes").GetUInt64());
        Assert.Equal(512UL << 30, root.GetProperty("mappingBytes").GetUInt64());
        Assert.Equal(4096, root.GetProperty("pagesTouched").GetInt32());
        Assert.Equal(2000, root.GetProperty("accessesPerRound").GetInt32());
        foreach (var side in new[] { "off", "on" })
        {
            double min = root.GetProperty($"{side}UsPerAccessMin").GetDouble(), max = root.GetProperty($"{side}UsPerAccessMax").GetDouble();
            double median = root.GetProperty($"{side}UsPerAccessMedian").GetDouble();
            Assert.InRange(median, min, max);
            Assert.True(min > 0, side);
        }
        // A ratio of the rounds, each on and off measured back to back: within the rounds' extremes.
        double ratio = root.GetProperty("onOverOffMedian").GetDouble();
        Assert.InRange(ratio, root.GetProperty("onUsPerAccessMin").GetDouble() / root.GetProperty("offUsPerAccessMax").GetDouble(),
            root.GetProperty("onUsPerAccessMax").GetDouble() / root.GetProperty("offUsPerAccessMin").GetDouble());
        Assert.True(root.GetProperty("fullWalkMs").GetDouble() > 0);
    }

    [Fact]
    public void BenchScaleJsonVerifiesEveryPageBothWaysAndReportsEachDesignsCost()
    {
        string html = Path.Combine(Path.GetTempPath(), $"bench-scale-{Guid.NewGuid():N}.html");
        var (exit, output, _) = Cli.Run("bench", "scale", "--working-set", "1GiB", "--json", "--report", html);
        Assert.Equal(0, exit);
        string text = File.ReadAllText(html);
        File.Delete(html);
        Assert.Contains("hmmsim bench scale — 1 GiB working set", text, StringComparison.Ordinal);
        Assert.Contains("Model machine: x86-64, 46-bit physical, 2 TiB RAM", text, StringComparison.Ordinal);
        Assert.Equal(2, text.Split("<table>").Length - 1);   // the registrations and the migrations
        Assert.Contains("<td>MI300X</td>", text, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(output);
        Assert.Contains(".NET", doc.RootElement.GetProperty("host").GetString(), StringComparison.Ordinal);
        Assert.Equal("x86-64, 46-bit physical, 2 TiB RAM, no PCI window", doc.RootElement.GetProperty("machine").GetString());
        Assert.Equal(2UL << 20, doc.RootElement.GetProperty("windowBytes").GetUInt64());
        Assert.True(doc.RootElement.GetProperty("hostFirstTouchNsPerPage").GetDouble() > 0);
        var registrations = doc.RootElement.GetProperty("registrations").EnumerateArray().ToList();
        Assert.Equal(4, registrations.Count);
        Assert.All(registrations, r => Assert.Equal(
            (long)(r.GetProperty("deviceBytes").GetUInt64() >> 12) * 64, r.GetProperty("kernelStructPageBytes").GetInt64()));
        var migrations = doc.RootElement.GetProperty("migrations").EnumerateArray().ToList();
        Assert.Equal(["PhysicalAddressSpace", "DeviceAddressSpace"], migrations.Select(m => m.GetProperty("design").GetString()));
        Assert.All(migrations, m =>
        {
            ulong pages = m.GetProperty("pages").GetUInt64();
            Assert.Equal(1UL << 18, pages);
            Assert.Equal(2 * pages, m.GetProperty("pagesVerified").GetUInt64());
            Assert.True(m.GetProperty("sysToDevPagesPerSec").GetDouble() > 0);
            Assert.True(m.GetProperty("devToSysPagesPerSec").GetDouble() > 0);
            Assert.True(m.GetProperty("peakRssBytes").GetInt64() >= m.GetProperty("peakRssBeforeTeardownBytes").GetInt64());
            Assert.True(m.GetProperty("peakRssBeforeTeardownBytes").GetInt64() >= m.GetProperty("baseRssBytes").GetInt64());
            Assert.True(m.GetProperty("teardownSeconds").GetDouble() <= m.GetProperty("modelSeconds").GetDouble());
            Assert.True(m.GetProperty("gcGen2Collections").GetInt32() >= 0);
            Assert.True(m.GetProperty("gcPauseSeconds").GetDouble() <= m.GetProperty("modelSeconds").GetDouble());
            // The model built struct pages for at least the working set on each side.
            Assert.True(m.GetProperty("structPagesInitialisedModel").GetUInt64() >= 2 * pages);
            Assert.True(m.GetProperty("sameFilledPages").GetInt64() >= (long)pages);
        });
    }
}
