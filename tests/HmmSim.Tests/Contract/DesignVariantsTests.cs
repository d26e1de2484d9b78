namespace HmmSim.Tests.Contract;

public class DesignVariantsTests
{
    [Fact]
    public void DefaultVariantsAreTheLatestPostedBehaviour()
    {
        var v = new MachineConfig().Variants;
        Assert.True(v.IsDefault);
        Assert.Equal(SoftleafMigrationRule.Consistent, v.SoftleafMigration);
        Assert.Equal(HmmPfnLayout.Disjoint, v.HmmPfnLayout);
        Assert.Equal(RmapMatch.PvmwDevicePrivate, v.RmapMatch);
        Assert.Equal(PgmapPlacement.Folio, v.PgmapPlacement);
        Assert.Equal(DevicePrivateZone.ZoneDevice, v.Zone);
        Assert.Equal(DevicePrivateIdentity.GlobalOffset, v.Identity);
        Assert.Equal(DevicePageMetadata.StructPage, v.DevicePageMetadata);
    }

    public static TheoryData<DesignVariants> RedesignOnly => new()
    {
        new DesignVariants { SoftleafMigration = SoftleafMigrationRule.AsPostedV1 },
        new DesignVariants { HmmPfnLayout = HmmPfnLayout.AsPosted },
        new DesignVariants { RmapMatch = RmapMatch.PfnOnly },
        new DesignVariants { Zone = DevicePrivateZone.ZoneDevicePrivate },
        new DesignVariants { Identity = DevicePrivateIdentity.PerPagemapSpace },
        new DesignVariants { DevicePageMetadata = DevicePageMetadata.Minimal },
    };

    [Theory]
    [MemberData(nameof(RedesignOnly))]
    public void VariantsOfTheRedesignAreRefusedUnderTodaysDesign(DesignVariants v)
    {
        var c = new MachineConfig { DevicePrivateDesign = DevicePrivateDesign.PhysicalAddressSpace, Variants = v, RamBytes = 64UL << 20 };
        var e = Assert.Throws<ArgumentException>(() => new Machine(c));
        Assert.Contains("no meaning", e.Message);
    }

    [Fact]
    public void PgmapPlacementIsAcceptedInBothDesigns()
    {
        foreach (var d in new[] { DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace })
        {
            using var m = new Machine(new MachineConfig { DevicePrivateDesign = d, RamBytes = 64UL << 20, Variants = new() { PgmapPlacement = PgmapPlacement.PageUnion } });
            Assert.Equal(PgmapPlacement.PageUnion, m.Config.Variants.PgmapPlacement);
        }
    }

    [Fact]
    public void UndefinedOrNullVariantsAreMisuse()
    {
        Assert.Throws<ArgumentException>(() => new Machine(new MachineConfig { Variants = new() { RmapMatch = (RmapMatch)7 } }));
        Assert.Throws<ArgumentException>(() => new Machine(new MachineConfig { Variants = null! }));
    }
}
