using HmmSim.Selftests;

namespace HmmSim.Tests.Proposals;

/// <summary>Each open proposal alone, and all three together, is a working design: every ported
/// selftest case of the redesign passes with it on.</summary>
public class ProposalBatteryTests
{
    public static TheoryData<string> Proposals => ["Zone", "Identity", "Minimal", "All"];

    internal static DesignVariants VariantsFor(string name) => name switch
    {
        "Zone" => new DesignVariants { Zone = DevicePrivateZone.ZoneDevicePrivate },
        "Identity" => new DesignVariants { Identity = DevicePrivateIdentity.PerPagemapSpace },
        "Minimal" => new DesignVariants { DevicePageMetadata = DevicePageMetadata.Minimal },
        "All" => new DesignVariants
        {
            Zone = DevicePrivateZone.ZoneDevicePrivate,
            Identity = DevicePrivateIdentity.PerPagemapSpace,
            DevicePageMetadata = DevicePageMetadata.Minimal,
        },
        _ => throw new ArgumentException($"unknown proposal {name}", nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Proposals))]
    public void EveryRedesignSelftestPassesUnderTheProposal(string proposal)
    {
        var variants = VariantsFor(proposal);
        var failures = new List<string>();
        var cases = SelftestCatalog.All.Where(c => c.Design == DevicePrivateDesign.DeviceAddressSpace).ToList();
        Assert.Equal(76, cases.Count);
        foreach (var c in cases)
        {
            try
            {
                SelftestCatalog.RunWith(c, variants);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failures.Add($"{c.Name}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void RunWithRefusesVariantsForTodaysDesign()
    {
        var c = SelftestCatalog.All.First(c => c.Design == DevicePrivateDesign.PhysicalAddressSpace);
        Assert.Throws<ArgumentException>(() => SelftestCatalog.RunWith(c, VariantsFor("Zone")));
    }
}
