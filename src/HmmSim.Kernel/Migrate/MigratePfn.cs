namespace HmmSim.Kernel;

/// <summary>MIGRATE_PFN_* (include/linux/migrate.h) and the mpfn helpers. In the redesign a
/// device-private page's mpfn carries its device-private offset and says so with DEVICE_PRIVATE.</summary>
public static class MigratePfn
{
    /// <summary>MIGRATE_PFN_VALID: the entry holds a page.</summary>
    public const ulong Valid = 1UL << 0;
    /// <summary>MIGRATE_PFN_MIGRATE: the source page was collected, locked and unmapped and may move;
    /// cleared when migrate_vma_pages could not move it (the driver should skip it).</summary>
    public const ulong Migrate = 1UL << 1;
    /// <summary>MIGRATE_PFN_WRITE: the source was mapped writable; on a destination, map the new page writable.</summary>
    public const ulong Write = 1UL << 3;
    /// <summary>MIGRATE_PFN_COMPOUND: the entry stands for a whole PMD-order folio (the next 511 entries are 0).</summary>
    public const ulong Compound = 1UL << 4;
    /// <summary>The pfn field is a device-private offset, not a PFN (the redesign).</summary>
    public const ulong DevicePrivate = 1UL << 5;
    /// <summary>MIGRATE_PFN_SHIFT: the pfn (or offset) starts at this bit.</summary>
    public const int Shift = 6;

    /// <summary>migrate_pfn_from_page.</summary>
    public static ulong FromPage(Page page) => page.Section.InDevicePrivateSpace
        ? (page.ToDevicePrivateIndex().Value << Shift) | Valid | DevicePrivate
        : (page.ToPfn().Value << Shift) | Valid;

    /// <summary>migrate_pfn_to_page: null (IsNull) without VALID.</summary>
    public static Page ToPage(KernelState kernel, ulong mpfn)
    {
        if ((mpfn & Valid) == 0)
            return default;
        return (mpfn & DevicePrivate) != 0
            ? kernel.Memmap.DevicePrivateOffsetToPage(new DevicePrivateIndex(mpfn >> Shift))
            : kernel.Memmap.PfnToPage(new Pfn(mpfn >> Shift));
    }
}

/// <summary>enum migrate_vma_direction.</summary>
[Flags]
public enum MigrateVmaSelect
{
    /// <summary>Select nothing.</summary>
    None = 0,
    /// <summary>MIGRATE_VMA_SELECT_SYSTEM: collect system-memory (anonymous, zero, none) pages, to move to the device.</summary>
    System = 1 << 0,
    /// <summary>MIGRATE_VMA_SELECT_DEVICE_PRIVATE: collect device-private pages of <see cref="MigrateVma.PgmapOwner"/>, to move back.</summary>
    DevicePrivate = 1 << 1,
    /// <summary>MIGRATE_VMA_SELECT_DEVICE_COHERENT: collect device-coherent pages of <see cref="MigrateVma.PgmapOwner"/>.</summary>
    DeviceCoherent = 1 << 2,
    /// <summary>MIGRATE_VMA_SELECT_COMPOUND: collect a PMD-mapped THP as one compound entry instead of splitting it.</summary>
    Compound = 1 << 3,
}

/// <summary>struct migrate_vma.</summary>
public sealed class MigrateVma
{
    /// <summary>migrate_vma.vma: the VMA holding [Start, End); found by the caller under mmap_lock.</summary>
    public Vma? Vma { get; set; }
    /// <summary>migrate_vma.src: one mpfn (MIGRATE_PFN_*) per page, filled by migrate_vma_setup; at least (End - Start) / PAGE_SIZE long.</summary>
    public ulong[] Src { get; set; } = [];
    /// <summary>migrate_vma.dst: one mpfn per page, filled by the driver with the locked destination pages
    /// (0 to skip a page) before migrate_vma_pages.</summary>
    public ulong[] Dst { get; set; } = [];
    /// <summary>migrate_vma.cpages: how many source entries were collected and unmapped (a compound entry counts once).</summary>
    public ulong Cpages { get; internal set; }
    /// <summary>migrate_vma.npages: how many entries of Src/Dst the walk filled.</summary>
    public ulong Npages { get; internal set; }
    /// <summary>migrate_vma.start: first user virtual address (page aligned).</summary>
    public ulong Start { get; set; }
    /// <summary>migrate_vma.end: end user virtual address (exclusive, page aligned).</summary>
    public ulong End { get; set; }
    /// <summary>Compared with pgmap->owner: only this owner's device pages are collected.</summary>
    public object? PgmapOwner { get; set; }
    /// <summary>migrate_vma.flags: which kinds of source page to collect.</summary>
    public MigrateVmaSelect Flags { get; set; }
    /// <summary>The locked device page a migrate_to_ram fault is for.</summary>
    public Page FaultPage { get; set; }
}
