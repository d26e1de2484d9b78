namespace HmmSim.Kernel;

/// <summary>The /proc/vmstat counters the model keeps, under the kernel's names.</summary>
public enum VmStatItem
{
    /// <summary>nr_free_pages: base pages free in the buddy allocator.</summary>
    NrFreePages,
    /// <summary>nr_anon_pages: anonymous base pages mapped by some process.</summary>
    NrAnonPages,
    /// <summary>nr_mapped: file-backed (shmem) base pages mapped by some process.</summary>
    NrMapped,
    /// <summary>nr_file_pages: base pages in the page cache (shmem included).</summary>
    NrFilePages,
    /// <summary>nr_shmem: shmem/tmpfs base pages.</summary>
    NrShmem,
    /// <summary>nr_page_table_pages: pages used as page tables.</summary>
    NrPageTablePages,
    /// <summary>nr_anon_transparent_hugepages: PMD-mapped anonymous THPs (counted in THPs, not pages).</summary>
    NrAnonTransparentHugepages,
    /// <summary>nr_shmem_hugepages: shmem THPs (always 0: shmem THP is off in the model).</summary>
    NrShmemHugepages,
    /// <summary>The model's own: base pages of ZONE_DEVICE memory in use.</summary>
    NrZoneDevicePages,
    /// <summary>pgfault: page faults handled (events).</summary>
    PgFault,
    /// <summary>pgmajfault: faults that returned VM_FAULT_MAJOR (device-private migrate_to_ram, swap-in).</summary>
    PgMajFault,
    /// <summary>thp_fault_alloc: THPs allocated at fault time.</summary>
    ThpFaultAlloc,
    /// <summary>thp_fault_fallback: THP faults that fell back to base pages.</summary>
    ThpFaultFallback,
    /// <summary>thp_split_page: large folios split.</summary>
    ThpSplitPage,
    /// <summary>thp_split_pmd: PMD mappings split into PTE mappings.</summary>
    ThpSplitPmd,
    /// <summary>thp_zero_page_alloc: huge zero folios allocated.</summary>
    ThpZeroPageAlloc,
    /// <summary>thp_collapse_alloc: THPs allocated by collapse (MADV_COLLAPSE).</summary>
    ThpCollapseAlloc,
    /// <summary>thp_migration_success: THPs migrated whole.</summary>
    ThpMigrationSuccess,
    /// <summary>thp_migration_fail: THP migrations that failed.</summary>
    ThpMigrationFail,
    /// <summary>thp_migration_split: THPs split to migrate.</summary>
    ThpMigrationSplit,
    /// <summary>pgmigrate_success: base pages migrated.</summary>
    PgMigrateSuccess,
    /// <summary>pgmigrate_fail: base pages that failed to migrate.</summary>
    PgMigrateFail,
    /// <summary>numa_hint_faults (kept for the /proc/vmstat layout; the model has no NUMA balancing).</summary>
    NumaHintFaults,
    /// <summary>pgfree: base pages freed to the buddy.</summary>
    PgFree,
    /// <summary>pgalloc (the kernel's pgalloc_* summed over zones): base pages allocated.</summary>
    PgAlloc,
    /// <summary>cow_fault: faults that copied on write.</summary>
    CowFaults,
    /// <summary>hugetlb_fault: faults in hugetlb VMAs.</summary>
    HugetlbFaults,
    /// <summary>The model's own: base pages covered by hmm_range_fault calls.</summary>
    HmmRangeFaultPages,
    /// <summary>The model's own: base pages migrate_vma moved into device memory.</summary>
    DeviceMigrateToDevice,
    /// <summary>The model's own: base pages migrate_vma (or eviction) moved from device memory to system memory.</summary>
    DeviceMigrateToRam,
    /// <summary>The model's own: device migrations that moved a THP whole, towards the device.</summary>
    DeviceMigrateToDeviceThp,
    /// <summary>The model's own: device migrations that moved a THP whole, towards system memory.</summary>
    DeviceMigrateToRamThp,
    /// <summary>The model's own: entries make_device_exclusive converted.</summary>
    DeviceExclusive,
    /// <summary>The model's own (the P2P series): pages a driver reached through a P2PDMA alias of another device's private page.</summary>
    P2pAliasPages,
    /// <summary>The model's own (the P2P series): P2PDMA pages the importer could not map (no P2P path)
    /// and so refetched without HMM_PFN_ALLOW_P2P.</summary>
    P2pFallbackPages,
    /// <summary>The number of counters (not a counter).</summary>
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
