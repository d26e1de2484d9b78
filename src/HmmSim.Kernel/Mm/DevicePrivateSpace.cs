namespace HmmSim.Kernel;

/// <summary>The redesign's device-private address space. With a global offset (the series) it is
/// device_private_pgmap_tree, a range allocator (a maple tree with MT_FLAGS_ALLOC_RANGE and
/// mtree_alloc_range) over [0, 2^MAX_PHYSMEM_BITS) bytes, each pagemap owning one contiguous range.
/// Under Jason Gunthorpe's (space #, space index) proposal there is no offset allocator: each pagemap
/// takes the lowest free space id (an IDA) and is a 0-based space of its own; a page's identity packs
/// the two as index | space &lt;&lt; <see cref="SpaceShift"/>, above the migration entry's young and dirty
/// bits, so the entry's offset field splits into [space | dirty | young | index].</summary>
internal sealed class DevicePrivateSpace
{
    private readonly Lock _lock = new();
    private readonly List<DevPagemap> _ranges = [];   // sorted by First
    private readonly List<DevPagemap?> _spaces = [];  // per-pagemap spaces, by id
    private readonly ulong _limitPages;

    /// <summary>One global offset space of <paramref name="limitPages"/> pages.</summary>
    public DevicePrivateSpace(ulong limitPages) => _limitPages = limitPages;

    /// <summary>Per-pagemap spaces: up to 2^<paramref name="spaceBits"/> of them, each of up to
    /// <paramref name="limitPages"/> pages, the id at bit <paramref name="spaceShift"/> of the identity.</summary>
    public DevicePrivateSpace(ulong limitPages, int spaceShift, int spaceBits)
    {
        _limitPages = limitPages;
        SpaceShift = spaceShift;
        SpaceBits = spaceBits;
    }

    /// <summary>Where the space id starts in an identity; 0 for the global offset design.</summary>
    public int SpaceShift { get; }
    /// <summary>Bits of space id; 0 for the global offset design.</summary>
    public int SpaceBits { get; }
    public bool PerPagemap => SpaceBits > 0;
    /// <summary>The space id of an identity (0 in the global design).</summary>
    public uint SpaceOf(ulong identity) => PerPagemap ? (uint)(identity >> SpaceShift) : 0;
    /// <summary>The index of an identity within its space (the offset itself in the global design).</summary>
    public ulong IndexOf(ulong identity) => PerPagemap ? identity & ((1UL << SpaceShift) - 1) : identity;

    /// <summary>mtree_alloc_range (global) or ida_alloc (per pagemap). EBUSY when no gap fits or no
    /// space id is left; E2BIG when one space cannot hold <paramref name="pages"/>.</summary>
    public Errno Alloc(DevPagemap pgmap, ulong pages)
    {
        lock (_lock)
            return PerPagemap ? AllocSpace(pgmap, pages) : AllocRange(pgmap, pages);
    }

    private Errno AllocRange(DevPagemap pgmap, ulong pages)
    {
        ulong cursor = 0;
        int at = 0;
        for (; at < _ranges.Count; at++)
        {
            if (_ranges[at].First - cursor >= pages)
                break;
            cursor = _ranges[at].First + _ranges[at].NrPages;
        }
        if (cursor > _limitPages || _limitPages - cursor < pages)
            return Errno.EBUSY;
        pgmap.First = cursor;
        pgmap.NrPages = pages;
        pgmap.InDevicePrivateSpace = true;
        _ranges.Insert(at, pgmap);
        return Errno.None;
    }

    private Errno AllocSpace(DevPagemap pgmap, ulong pages)
    {
        if (pages > _limitPages)
            return Errno.E2BIG;
        int id = _spaces.IndexOf(null);
        if (id < 0)
        {
            if ((ulong)_spaces.Count >= 1UL << SpaceBits)
                return Errno.EBUSY;
            id = _spaces.Count;
            _spaces.Add(null);
        }
        _spaces[id] = pgmap;
        pgmap.First = (ulong)id << SpaceShift;
        pgmap.NrPages = pages;
        pgmap.InDevicePrivateSpace = true;
        int at = 0;
        while (at < _ranges.Count && _ranges[at].First < pgmap.First)
            at++;
        _ranges.Insert(at, pgmap);
        return Errno.None;
    }

    /// <summary>mtree_erase, or ida_free of the pagemap's space id.</summary>
    public void Erase(DevPagemap pgmap)
    {
        lock (_lock)
        {
            if (!_ranges.Remove(pgmap))
                ThrowHelper.KernelBug($"device-private space: erasing {pgmap} that was never allocated");
            if (PerPagemap)
                _spaces[(int)SpaceOf(pgmap.First)] = null;
        }
    }

    /// <summary>mtree_load: the pagemap owning an offset, or null. Per pagemap: the space id is the pagemap.</summary>
    public DevPagemap? Load(DevicePrivateIndex offset)
    {
        lock (_lock)
        {
            if (PerPagemap)
            {
                uint id = SpaceOf(offset.Value);
                return id < (uint)_spaces.Count && _spaces[(int)id] is { } pg && pg.Contains(offset.Value) ? pg : null;
            }
            foreach (var r in _ranges)
                if (r.Contains(offset.Value))
                    return r;
            return null;
        }
    }

    public DevPagemap[] Snapshot()
    {
        lock (_lock)
            return [.. _ranges];
    }
}
