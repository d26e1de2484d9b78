namespace HmmSim.Kernel;

/// <summary>mem_section[] and vmemmap: where every struct page lives. Sections are described when
/// memory is added (RAM at boot, ZONE_DEVICE by memremap) and get their memmap arrays the first
/// time a page in them is looked up, so registering a TiB of device memory costs nothing per page.
/// The device-private address space of the redesign has its own section table.</summary>
internal sealed class Memmap
{
    private const int LeafShift = 9;
    private const int LeafSize = 1 << LeafShift;

    private readonly KernelState _kernel;
    private readonly Lock _lock = new();
    private readonly SectionTable _phys;
    private readonly SectionTable _devicePrivate;
    // Per-pagemap spaces (the (space #, space index) proposal): one section table per space id, so a
    // lookup is space → its own memmap, with no global offset. Empty in the global-offset design.
    private readonly int _spaceShift;
    private SectionTable?[] _spaces = [];
    private readonly List<PresentRange> _present = [];
    private readonly ulong _vmemmapEndPfn;
    private long _memmapBytes;
    private long _kernelStructPageBytes;

    public Memmap(KernelState kernel, int sectionShift, int physBits, int devicePrivateBits, ulong vmemmapEndPfn, int spaceShift = 0)
    {
        _spaceShift = spaceShift;
        _kernel = kernel;
        SectionShift = sectionShift;
        PagesPerSection = 1 << (sectionShift - Arch.PageShift);
        _phys = new SectionTable(physBits - sectionShift);
        _devicePrivate = new SectionTable((spaceShift > 0 ? 0 : devicePrivateBits) - sectionShift);
        _vmemmapEndPfn = vmemmapEndPfn;
    }

    public int SectionShift { get; }
    public int PagesPerSection { get; }
    public PageDataPool Data { get; } = new();
    public MappingTable Mappings { get; } = new();
    public KernelState Kernel => _kernel;

    /// <summary>Bytes of memmap arrays the model has materialized.</summary>
    public long ModelMemmapBytes => Interlocked.Read(ref _memmapBytes);
    /// <summary>What the kernel would spend on struct pages for all memory added so far (64 B a page).</summary>
    public long KernelStructPageBytes => Interlocked.Read(ref _kernelStructPageBytes);

    private sealed record PresentRange(bool DevicePrivateSpace, ulong First, ulong Pages, ZoneType Zone, DevPagemap? Pgmap, int BytesPerPage);

    /// <summary>Describes memory whose memmap will be built on first use (sparse_add_section). The
    /// kernel spends <paramref name="bytesPerPage"/> on each page's descriptor (a 64-byte struct page,
    /// or the Minimal device-private descriptor).</summary>
    public void AddRange(bool devicePrivateSpace, ulong first, ulong pages, ZoneType zone, DevPagemap? pgmap, int bytesPerPage = 64)
    {
        lock (_lock)
        {
            _present.Add(new PresentRange(devicePrivateSpace, first, pages, zone, pgmap, bytesPerPage));
            Interlocked.Add(ref _kernelStructPageBytes, (long)pages * bytesPerPage);
        }
    }

    /// <summary>Removes a range added by <see cref="AddRange"/> and the sections it alone covered.</summary>
    public void RemoveRange(bool devicePrivateSpace, ulong first, ulong pages)
    {
        lock (_lock)
        {
            int i = _present.FindIndex(r => r.DevicePrivateSpace == devicePrivateSpace && r.First == first && r.Pages == pages);
            if (i < 0)
                ThrowHelper.KernelBug($"memmap: removing range 0x{first:x}+0x{pages:x} that was never added");
            int bytesPerPage = _present[i].BytesPerPage;
            _present.RemoveAt(i);
            Interlocked.Add(ref _kernelStructPageBytes, -(long)pages * bytesPerPage);
            var table = TableFor(devicePrivateSpace, first, create: false);
            ulong spaceBase = devicePrivateSpace ? SpaceBase(first) : 0;
            for (ulong s = (first - spaceBase) >> SectionPageShift; s <= (first - spaceBase + pages - 1) >> SectionPageShift; s++)
            {
                if (FindPresent(devicePrivateSpace, spaceBase + (s << SectionPageShift)) is null && table?.Get(s) is { } sec)
                {
                    table.Set(s, null);
                    Interlocked.Add(ref _memmapBytes, -(long)sec.Pages.Length * 24);
                }
            }
        }
    }

    /// <summary>pfn_valid: a memmap exists (or will on first use) for this PFN.</summary>
    public bool PfnValid(Pfn pfn) => pfn.Value < _vmemmapEndPfn && (_phys.Get(pfn.Value >> SectionPageShift) is not null || FindPresent(false, pfn.Value) is not null);

    private int SectionPageShift => SectionShift - Arch.PageShift;

    /// <summary>pfn_to_page. A PFN outside every memmap is a BUG, as is one past the end of the
    /// vmemmap (arm64 sizes it to the linear map: reading past it is the corruption of seed 004).</summary>
    public Page PfnToPage(Pfn pfn)
    {
        if (pfn.Value >= _vmemmapEndPfn)
            ThrowHelper.KernelBug($"pfn_to_page({pfn}): beyond the end of vmemmap (pfn 0x{_vmemmapEndPfn:x}); the struct page read would be outside the memmap");
        ulong s = pfn.Value >> SectionPageShift;
        var sec = _phys.Get(s) ?? Materialize(false, pfn.Value) ?? ThrowHelper.KernelBug<MemSection>($"pfn_to_page({pfn}): no memmap covers this PFN");
        return new Page(sec, (int)(pfn.Value - sec.FirstNumber));
    }

    /// <summary>The page numbered <paramref name="number"/>, or false when no memmap covers it any more
    /// (its pagemap was removed). For lookups the model makes from an entry read without the page-table
    /// lock, where the kernel would only have computed the struct page's address (see
    /// <see cref="Migrate.MigrationEntryWait"/>).</summary>
    public bool TryPageAt(bool devicePrivateSpace, ulong number, out Page page)
    {
        page = default;
        if (!devicePrivateSpace && number >= _vmemmapEndPfn)
            return false;
        ulong s = (number - (devicePrivateSpace ? SpaceBase(number) : 0)) >> SectionPageShift;
        var sec = TableFor(devicePrivateSpace, number, create: false)?.Get(s) ?? Materialize(devicePrivateSpace, number);
        if (sec is null)
            return false;
        page = new Page(sec, (int)(number - sec.FirstNumber));
        return true;
    }

    /// <summary>device_private_offset_to_page (the redesign).</summary>
    public Page DevicePrivateOffsetToPage(DevicePrivateIndex index)
    {
        ulong s = (index.Value - SpaceBase(index.Value)) >> SectionPageShift;
        var sec = TableFor(true, index.Value, create: false)?.Get(s) ?? Materialize(true, index.Value) ?? ThrowHelper.KernelBug<MemSection>($"device_private_offset_to_page({index}): no device-private pagemap covers this offset");
        return new Page(sec, (int)(index.Value - sec.FirstNumber));
    }

    /// <summary>The page numbered <paramref name="number"/> in the physical or the device-private
    /// address space: pfn_to_page or device_private_offset_to_page.</summary>
    public Page PageAt(bool devicePrivateSpace, ulong number) => devicePrivateSpace
        ? DevicePrivateOffsetToPage(new DevicePrivateIndex(number))
        : PfnToPage(new Pfn(number));

    private PresentRange? FindPresent(bool devicePrivateSpace, ulong number)
    {
        foreach (var r in _present)
            if (r.DevicePrivateSpace == devicePrivateSpace && number - r.First < r.Pages)
                return r;
        return null;
    }

    /// <summary>The first identity of the space <paramref name="number"/> is in (0 without per-pagemap spaces).</summary>
    private ulong SpaceBase(ulong number) => _spaceShift > 0 ? number >> _spaceShift << _spaceShift : 0;

    /// <summary>The section table a page number is looked up in: the physical one, the global
    /// device-private one, or its space's own.</summary>
    private SectionTable? TableFor(bool devicePrivateSpace, ulong number, bool create)
    {
        if (!devicePrivateSpace)
            return _phys;
        if (_spaceShift == 0)
            return _devicePrivate;
        ulong id = number >> _spaceShift;
        var spaces = Volatile.Read(ref _spaces);
        if (id < (ulong)spaces.Length && spaces[id] is { } t)
            return t;
        if (!create)
            return null;
        if (id >= (ulong)spaces.Length)
        {
            Array.Resize(ref spaces, (int)Math.Max(id + 1, (ulong)spaces.Length * 2));
            Volatile.Write(ref _spaces, spaces);
        }
        return spaces[id] = new SectionTable(_spaceShift - SectionShift + Arch.PageShift);
    }

    private MemSection? Materialize(bool devicePrivateSpace, ulong number)
    {
        lock (_lock)
        {
            ulong spaceBase = devicePrivateSpace ? SpaceBase(number) : 0;
            ulong sectionNr = (number - spaceBase) >> SectionPageShift;
            var existing = TableFor(devicePrivateSpace, number, create: false)?.Get(sectionNr);
            if (existing is not null)
                return existing;
            ulong first = spaceBase + (sectionNr << SectionPageShift);
            PresentRange? covering = null;
            foreach (var r in _present)
            {
                if (r.DevicePrivateSpace == devicePrivateSpace && r.First < first + (ulong)PagesPerSection && first < r.First + r.Pages)
                {
                    covering = r;
                    break;
                }
            }
            if (covering is null)
                return null;
            var sec = new MemSection(this, first, PagesPerSection, covering.Zone, devicePrivateSpace);
            if (covering.Zone >= ZoneType.Device)
                InitZoneDevice(sec, devicePrivateSpace);
            Interlocked.Add(ref _memmapBytes, (long)PagesPerSection * 24 + (sec.SubsectionPgmap?.Length ?? 0) * 8);
            TableFor(devicePrivateSpace, number, create: true)!.Set(sectionNr, sec);
            return sec;
        }
    }

    /// <summary>memmap_init_zone_device for one section: every page of every pagemap that covers it
    /// gets its pgmap, and compound folios of order vmemmap_shift are laid out.</summary>
    private void InitZoneDevice(MemSection sec, bool devicePrivateSpace)
    {
        foreach (var r in _present)
        {
            if (r.DevicePrivateSpace != devicePrivateSpace || r.Pgmap is null)
                continue;
            ulong lo = Math.Max(r.First, sec.FirstNumber), hi = Math.Min(r.First + r.Pages, sec.FirstNumber + (ulong)PagesPerSection);
            for (ulong n = lo; n < hi; n += 1UL << MemSection.SubsectionShift)
                sec.SubsectionPgmap![(int)(n - sec.FirstNumber) >> MemSection.SubsectionShift] = r.Pgmap;
            int order = r.Pgmap.VmemmapShift;
            // A new section's descriptors are all zero, which is what __init_zone_device_page leaves in
            // an order-0 page of every type but GENERIC: with no census to count the stores, there is
            // nothing to write (and the memmap's memory is first touched when a page is allocated).
            if (order == 0 && r.Pgmap.Type != MemoryType.Generic && Volatile.Read(ref DevicePageCensus.Active) == 0)
                continue;
            for (ulong n = lo; n < hi; n++)
            {
                int i = (int)(n - sec.FirstNumber);
                ref var d = ref sec.Pages[i];
                d = default;
                // memmap_init_zone_device / __init_zone_device_page: zone, pgmap, refcount, compound head.
                DevicePageCensus.Note(sec, i, PageField.Flags, true);
                DevicePageCensus.Note(sec, i, PageField.Pgmap, true);
                DevicePageCensus.Note(sec, i, PageField.RefCount, true);
                ulong inFolio = (n - r.First) & ((1UL << order) - 1);
                if (order > 0 && inFolio != 0)
                {
                    d.Flags = (uint)PageFlags.Tail;
                    d.Mapping = (uint)inFolio;
                    if (inFolio == 1)
                        d.Flags |= (uint)order << 24;
                }
                else
                {
                    if (order > 0)
                        d.Flags = (uint)PageFlags.Head;
                    // __init_zone_device_page: MEMORY_DEVICE_GENERIC pages keep the count of 1 that
                    // __init_single_page gave them; every other type starts at 0 for its allocator.
                    if (r.Pgmap.Type == MemoryType.Generic)
                        d.RefCount = 1;
                }
            }
        }
    }

    /// <summary>The last reference to a folio is gone: __folio_put.</summary>
    public void FreeFolio(Folio folio)
    {
        if (folio.IsZoneDevice)
            Memremap.FreeZoneDeviceFolio(folio);
        else if (folio.IsHugetlb)
            _kernel.Hugetlb.FreeFolio(folio);
        else
            _kernel.Buddy.FreeFolio(folio);
    }

    /// <summary>Every materialized section, for the invariant checker and reports.</summary>
    public IEnumerable<MemSection> Sections()
    {
        foreach (var s in _phys.All())
            yield return s;
        foreach (var s in _devicePrivate.All())
            yield return s;
        foreach (var t in Volatile.Read(ref _spaces))
            if (t is not null)
                foreach (var s in t.All())
                    yield return s;
    }

    /// <summary>A two-level table of section pointers, so a 48-bit space costs only what it uses.</summary>
    private sealed class SectionTable(int bits)
    {
        private readonly MemSection?[]?[] _root = new MemSection?[]?[Math.Max(1, 1 << Math.Max(0, bits - LeafShift))];

        public MemSection? Get(ulong nr)
        {
            ulong r = nr >> LeafShift;
            if (r >= (ulong)_root.Length)
                return null;
            var leaf = Volatile.Read(ref _root[r]);
            return leaf is null ? null : Volatile.Read(ref leaf[nr & (LeafSize - 1)]);
        }

        public void Set(ulong nr, MemSection? sec)
        {
            ulong r = nr >> LeafShift;
            if (r >= (ulong)_root.Length)
                ThrowHelper.KernelBug($"memmap: section {nr} is beyond the address space");
            var leaf = _root[r] ??= new MemSection?[LeafSize];
            Volatile.Write(ref leaf[nr & (LeafSize - 1)], sec);
        }

        public IEnumerable<MemSection> All()
        {
            foreach (var leaf in _root)
            {
                if (leaf is null)
                    continue;
                foreach (var s in leaf)
                    if (s is not null)
                        yield return s;
            }
        }
    }
}
