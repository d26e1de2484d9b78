using HmmSim.Selftests;

namespace HmmSim.Cli.Proposals;

/// <summary>The device-page census over the battery: every ported selftest case of the redesign whose
/// fixture uses device-private memory, run with the census recording.</summary>
public static class CensusRun
{
    public static IReadOnlyList<DevicePageAccess> Run(Action<string>? progress = null)
    {
        var cases = SelftestCatalog.All.Where(c => c.Design == DevicePrivateDesign.DeviceAddressSpace && c.Variant.EndsWith("device_private", StringComparison.Ordinal)).ToList();
        using var census = DevicePageCensusSession.Start();
        int failed = 0, ran = 0;
        // Ctrl-C: the census stops after the case in progress and counts what ran.
        foreach (var c in cases.TakeWhile(_ => !Interrupt.Requested))
        {
            ran++;
            try
            {
                c.Run();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed++;
                progress?.Invoke($"FAIL {c.Name}: {e.Message}");
            }
        }
        progress?.Invoke($"{ran - failed}/{ran} cases passed under the census" + (ran < cases.Count ? $" (interrupted: {ran} of {cases.Count} ran)" : ""));
        return census.Rows();
    }
}
