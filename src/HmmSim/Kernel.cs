namespace HmmSim;

/// <summary>The modelled kernel: one per <see cref="Machine"/>. It owns the memory subsystems and
/// is what the mm code reaches for where the kernel uses globals (the zero page, the buddy, the
/// swap-type numbering of the configured design).</summary>
internal sealed partial class Kernel
{
    public Kernel(MachineConfig config)
    {
        Config = config;
        Arch = Arch.For(config.Architecture);
        ulong ramPages = config.RamBytes >> Arch.PageShift;
        ulong vmemmapEnd = Arch.VmemmapCoversOnlyLinearMap ? LinearMapEnd >> Arch.PageShift : 1UL << (config.PhysicalAddressBits - Arch.PageShift);
        Memmap = new Memmap(this, Arch.SectionSizeBits, config.PhysicalAddressBits, vmemmapEnd);
        Memmap.AddRange(false, 0, ramPages, ZoneType.Normal, null);
        Buddy = new Buddy(Memmap, ramPages);
    }

    public MachineConfig Config { get; }
    public Arch Arch { get; }
    public Memmap Memmap { get; }
    public Buddy Buddy { get; }
    public VmStat VmStat { get; } = new();
    public Dmesg Dmesg { get; } = new();

    /// <summary>PHYSMEM_END on arm64: the end of what the linear map (and so vmemmap) can cover,
    /// half of the 48-bit kernel VA space. x86-64's direct map covers all of MAX_PHYSMEM_BITS.</summary>
    public ulong LinearMapEnd => Arch.Kind == Architecture.Arm64
        ? 1UL << (Arch.MaxPhysmemBits - 1)
        : 1UL << Config.PhysicalAddressBits;

    /// <summary>free_zone_device_folio: the pagemap's folio_free gets the folio back.</summary>
    public void FreeZoneDeviceFolio(Folio folio)
    {
        var pgmap = folio.Pgmap ?? ThrowHelper.KernelBug<DevPagemap>($"freeing ZONE_DEVICE {folio} without a pgmap");
        folio.Head.Flags &= (uint)(PageFlags.Head | PageFlags.HighByteMask);
        folio.Mapping = 0;
        pgmap.Ops.FolioFree?.Invoke(folio);
        Interlocked.Decrement(ref pgmap.LiveReferences);
    }
}
