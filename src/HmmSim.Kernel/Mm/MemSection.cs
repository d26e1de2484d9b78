namespace HmmSim.Kernel;

/// <summary>struct mem_section: the memmap of one section, created when the section is first used.
/// A section lives either in the physical address space (its pages have PFNs) or, in the
/// redesign, in the device-private address space (its pages have device-private indices).</summary>
internal sealed class MemSection
{
    public const int SubsectionShift = 21 - Arch.PageShift;   // 2 MiB subsections (512 pages)

    public MemSection(Memmap owner, ulong firstNumber, int pages, ZoneType zone, bool devicePrivateSpace)
    {
        Owner = owner;
        FirstNumber = firstNumber;
        Pages = new PageDesc[pages];
        Zone = zone;
        InDevicePrivateSpace = devicePrivateSpace;
        if (zone >= ZoneType.Device)
            SubsectionPgmap = new DevPagemap?[(pages + (1 << SubsectionShift) - 1) >> SubsectionShift];
    }

    public Memmap Owner { get; }
    /// <summary>The first page's PFN, or its device-private index when <see cref="InDevicePrivateSpace"/>.</summary>
    public ulong FirstNumber { get; }
    public PageDesc[] Pages { get; }
    public ZoneType Zone { get; }
    public bool InDevicePrivateSpace { get; }
    /// <summary>The pagemap of each 2 MiB subsection of a ZONE_DEVICE section (memmap_init_zone_device
    /// writes pgmap per page; it is constant per subsection, the unit memremap_pages maps).</summary>
    public DevPagemap?[]? SubsectionPgmap { get; }
}
