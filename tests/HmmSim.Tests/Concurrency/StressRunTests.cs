using HmmSim.Cli.Stress;

namespace HmmSim.Tests.Concurrency;

/// <summary>The stress run (src/HmmSim.Cli/Stress, shared with `hmmsim stress`) for a few seconds per design:
/// four threads over two processes, every operation kind, each value checked, the checker and the teardown
/// leak check at the end. A failure prints the seed and the last operations of every thread.</summary>
public class StressRunTests
{
    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace, 1UL)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace, 1UL)]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace, 2UL)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace, 2UL)]
    public void FourThreadsOverTwoProcessesRunCleanWithEveryOperationKind(DevicePrivateDesign design, ulong seed)
    {
        var o = new StressOptions(4, TimeSpan.FromSeconds(3), seed, design, HangTimeout: TimeSpan.FromSeconds(90));
        var result = new StressEngine(o).Run();
        Assert.True(result.Clean, result.Report(o));
        Assert.True(result.Operations > 0);
    }
}
