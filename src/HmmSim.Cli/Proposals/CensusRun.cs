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
        int failed = 0;
        foreach (var c in cases)
        {
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
        progress?.Invoke($"{cases.Count - failed}/{cases.Count} cases passed under the census");
        return census.Rows();
    }
}
