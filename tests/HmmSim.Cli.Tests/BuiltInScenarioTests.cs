using HmmSim.Cli.Workloads;

namespace HmmSim.Cli.Tests;

/// <summary>The figures `hmmsim run` prints for the built-in scenario.</summary>
public class BuiltInScenarioTests
{
    [Fact]
    public void TodaysDesignCannotProbeTheDeviceOnTheSeedVm()
    {
        var r = SeedScenario.Run(DevicePrivateDesign.PhysicalAddressSpace);
        Assert.False(r.DeviceProbed);
        Assert.Contains("-ERANGE", r.DeviceStatus, StringComparison.Ordinal);
        Assert.Equal(0, r.PagesToDevice);
        Assert.False(r.DataVerified);
    }

    [Fact]
    public void TheRedesignMigratesEveryPageAndVerifiesTheData()
    {
        var r = SeedScenario.Run(DevicePrivateDesign.DeviceAddressSpace);
        Assert.True(r.DeviceProbed);
        Assert.True(r.DataVerified);
        Assert.Equal(2048, r.PagesToDevice);   // 8 MiB: two THPs and 1024 small pages
        Assert.Equal(2, r.ThpsToDevice);
        Assert.Equal(2048, r.PagesToRam);      // faulted back or evicted by RELEASE
        Assert.Equal(2048, r.P2pAliasPages);   // the peer read all of it over unit 0's BAR
        Assert.True(r.StructPageBytesModel < r.StructPageBytesKernel);
    }
}
