namespace HmmSim.Kernel;

/// <summary>MIGRATE_PFN_* (include/linux/migrate.h) and the mpfn helpers. In the redesign a
/// device-private page's mpfn carries its device-private offset and says so with DEVICE_PRIVATE.</summary>
public static class MigratePfn
{
    public const ulong Valid = 1UL << 0;
    public const ulong Migrate = 1UL << 1;
    public const ulong Write = 1UL << 3;
    public const ulong Compound = 1UL << 4;
    public const ulong DevicePrivate = 1UL << 5;
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
    None = 0, System = 1 << 0, DevicePrivate = 1 << 1, DeviceCoherent = 1 << 2, Compound = 1 << 3,
}

/// <summary>struct migrate_vma.</summary>
public sealed class MigrateVma
{
    public Vma? Vma { get; set; }
    public ulong[] Src { get; set; } = [];
    public ulong[] Dst { get; set; } = [];
    public ulong Cpages { get; internal set; }
    public ulong Npages { get; internal set; }
    public ulong Start { get; set; }
    public ulong End { get; set; }
    /// <summary>Compared with pgmap->owner: only this owner's device pages are collected.</summary>
    public object? PgmapOwner { get; set; }
    public MigrateVmaSelect Flags { get; set; }
    /// <summary>The locked device page a migrate_to_ram fault is for.</summary>
    public Page FaultPage { get; set; }
}
