using HmmSim.Cli.Explore;

namespace HmmSim.Cli.Tests;

/// <summary>--variant parsing, the all-single set, the skip rule under today's design, and the
/// scenario format's machine.variants.</summary>
public class ExploreVariantTests
{
    [Fact]
    public void ParsesACombinationCaseInsensitively()
    {
        Assert.True(VariantSwitches.TryParse("SoftleafMigration=AsPostedV1, rmapmatch=pfnonly", out var v, out _));
        Assert.Equal(new DesignVariants { SoftleafMigration = SoftleafMigrationRule.AsPostedV1, RmapMatch = RmapMatch.PfnOnly }, v);
        Assert.Equal("SoftleafMigration=AsPostedV1,RmapMatch=PfnOnly", VariantSwitches.Describe(v));
        Assert.True(VariantSwitches.TryParse("default", out var d, out _));
        Assert.True(d.IsDefault);
    }

    [Theory]
    [InlineData("RmapMatch=Nope", "PvmwDevicePrivate")]
    [InlineData("Rmap=PfnOnly", "SoftleafMigration=Consistent|AsPostedV1")]
    [InlineData("RmapMatch", "not Name=Value")]
    [InlineData("RmapMatch=1", "PvmwDevicePrivate, PfnOnly")]
    public void RejectsUnknownNamesAndValuesListingTheValidOnes(string text, string listed)
    {
        Assert.False(VariantSwitches.TryParse(text, out _, out var why));
        Assert.Contains(listed, why, StringComparison.Ordinal);
    }

    [Fact]
    public void AllSingleIsTheDefaultAndEachSwitchAloneAtEachOtherValue()
    {
        var all = VariantSwitches.AllSingle();
        int expected = 1 + typeof(DesignVariants).GetProperties().Where(p => p.PropertyType.IsEnum).Sum(p => Enum.GetValues(p.PropertyType).Length - 1);
        Assert.Equal(expected, all.Count);
        Assert.True(all[0].IsDefault);
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.All(all.Skip(1), v => Assert.Single(VariantSwitches.Settings(v)));
        Assert.Contains(new DesignVariants { DevicePageMetadata = DevicePageMetadata.Minimal }, all);
    }

    [Fact]
    public void SkipsUnderTodaysDesignExactlyWhatNewMachineRefuses()
    {
        foreach (var v in VariantSwitches.AllSingle())
        {
            string? why = VariantSwitches.SkipReason(v, DevicePrivateDesign.PhysicalAddressSpace);
            Assert.Null(VariantSwitches.SkipReason(v, DevicePrivateDesign.DeviceAddressSpace));
            var config = new MachineConfig { DevicePrivateDesign = DevicePrivateDesign.PhysicalAddressSpace, Variants = v };
            if (why is null)
                new Machine(config).Dispose();
            else
                Assert.Throws<ArgumentException>(() => new Machine(config));
        }
    }

    [Fact]
    public void TheSelftestFamilyBootsItsMachinesWithTheVariant()
    {
        // Proven by the machine's refusal: a redesign switch under today's design cannot boot.
        var c = Selftests.SelftestCatalog.All.First(c => c.Design == DevicePrivateDesign.PhysicalAddressSpace);
        var e = Assert.Throws<ArgumentException>(() => Selftests.SelftestCatalog.Run(c, new DesignVariants { RmapMatch = RmapMatch.PfnOnly }));
        Assert.Contains("RmapMatch", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ScenarioMachineVariantsReachTheMachineConfig()
    {
        string path = Cli.TempScenario("""
            { "machine": { "designs": "DeviceAddressSpace", "variants": { "RmapMatch": "PfnOnly", "pgmapPlacement": "pageunion" } },
              "steps": [ { "op": "mmap", "name": "buf", "length": 4096 } ] }
            """);
        var scenario = Scenarios.ScenarioFile.Load(path);
        var config = scenario.Machine.ToConfig(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Equal(new DesignVariants { RmapMatch = RmapMatch.PfnOnly, PgmapPlacement = PgmapPlacement.PageUnion }, config.Variants);
    }

    [Fact]
    public void ScenarioWithAnUnknownVariantIsABadFile()
    {
        string path = Cli.TempScenario("""
            { "machine": { "variants": { "RmapMatch": "Sometimes" } }, "steps": [ { "op": "mmap", "name": "buf", "length": 4096 } ] }
            """);
        var (exit, _, err) = Cli.Run("run", path);
        Assert.Equal(2, exit);
        Assert.Contains("unknown value \"Sometimes\" for RmapMatch; valid: PvmwDevicePrivate, PfnOnly", err, StringComparison.Ordinal);
    }

    [Fact]
    public void ARedesignVariantUnderTodaysDesignIsABadFileInRun()
    {
        string path = Cli.TempScenario("""
            { "machine": { "designs": "PhysicalAddressSpace", "variants": { "RmapMatch": "PfnOnly" } },
              "steps": [ { "op": "mmap", "name": "buf", "length": 4096 } ] }
            """);
        // The file check asks the library's own boot rules: a machine it refuses is a bad file (exit 2),
        // reported at the machine section with the library's reason.
        var (exit, output, error) = Cli.Run("run", path, "--quiet");
        Assert.Equal(2, exit);
        Assert.Contains("have no meaning under DevicePrivateDesign.PhysicalAddressSpace", output + error, StringComparison.Ordinal);
        Assert.Matches(@":\d+:\d+: ", output + error);
    }
}
