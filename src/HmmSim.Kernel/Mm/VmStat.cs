namespace HmmSim.Kernel;

/// <summary>The /proc/vmstat counters the model keeps, under the kernel's names.</summary>
public enum VmStatItem
{
    NrFreePages, NrAnonPages, NrMapped, NrFilePages, NrShmem, NrPageTablePages, NrAnonTransparentHugepages,
    NrShmemHugepages, NrZoneDevicePages,
    PgFault, PgMajFault, ThpFaultAlloc, ThpFaultFallback, ThpSplitPage, ThpSplitPmd, ThpZeroPageAlloc,
    ThpCollapseAlloc, ThpMigrationSuccess, ThpMigrationFail, ThpMigrationSplit, PgMigrateSuccess, PgMigrateFail,
    NumaHintFaults, PgFree, PgAlloc, CowFaults, HugetlbFaults,
    HmmRangeFaultPages, DeviceMigrateToDevice, DeviceMigrateToRam, DeviceMigrateToDeviceThp, DeviceMigrateToRamThp, DeviceExclusive, P2pAliasPages, P2pFallbackPages,
    Count,
}

/// <summary>Event and state counters. Increments are atomic; reads are a snapshot.</summary>
internal sealed class VmStat
{
    private readonly long[] _counters = new long[(int)VmStatItem.Count];

    public void Inc(VmStatItem item) => Interlocked.Increment(ref _counters[(int)item]);
    public void Add(VmStatItem item, long delta) => Interlocked.Add(ref _counters[(int)item], delta);
    public long this[VmStatItem item] => Interlocked.Read(ref _counters[(int)item]);

    /// <summary>The /proc/vmstat name of a counter ("thp_fault_alloc"), or the model's own snake_case name.</summary>
    public static string Name(VmStatItem item) => item switch
    {
        VmStatItem.CowFaults => "cow_fault",
        VmStatItem.HugetlbFaults => "hugetlb_fault",
        VmStatItem.PgFault => "pgfault",
        VmStatItem.PgMajFault => "pgmajfault",
        VmStatItem.PgMigrateSuccess => "pgmigrate_success",
        VmStatItem.PgMigrateFail => "pgmigrate_fail",
        VmStatItem.PgFree => "pgfree",
        VmStatItem.PgAlloc => "pgalloc",
        _ => ToSnake(item.ToString()),
    };

    private static string ToSnake(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length + 8);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsUpper(s[i]) && i > 0)
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(s[i]));
        }
        return sb.ToString();
    }
}
