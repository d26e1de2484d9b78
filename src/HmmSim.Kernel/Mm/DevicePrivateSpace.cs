namespace HmmSim.Kernel;

/// <summary>The redesign's device-private address space: device_private_pgmap_tree, a range
/// allocator (the series uses a maple tree with MT_FLAGS_ALLOC_RANGE and mtree_alloc_range) over
/// [0, 2^MAX_PHYSMEM_BITS) bytes. Each pagemap owns one contiguous range of offsets; lookups go
/// offset → pagemap → page.</summary>
internal sealed class DevicePrivateSpace(ulong limitPages)
{
    private readonly Lock _lock = new();
    private readonly List<DevPagemap> _ranges = [];   // sorted by First

    /// <summary>mtree_alloc_range: the lowest free gap of <paramref name="pages"/> pages; EBUSY when no gap fits.</summary>
    public Errno Alloc(DevPagemap pgmap, ulong pages)
    {
        lock (_lock)
        {
            ulong cursor = 0;
            int at = 0;
            for (; at < _ranges.Count; at++)
            {
                if (_ranges[at].First - cursor >= pages)
                    break;
                cursor = _ranges[at].First + _ranges[at].NrPages;
            }
            if (cursor > limitPages || limitPages - cursor < pages)
                return Errno.EBUSY;
            pgmap.First = cursor;
            pgmap.NrPages = pages;
            pgmap.InDevicePrivateSpace = true;
            _ranges.Insert(at, pgmap);
            return Errno.None;
        }
    }

    /// <summary>mtree_erase.</summary>
    public void Erase(DevPagemap pgmap)
    {
        lock (_lock)
        {
            if (!_ranges.Remove(pgmap))
                ThrowHelper.KernelBug($"device-private space: erasing {pgmap} that was never allocated");
        }
    }

    /// <summary>mtree_load: the pagemap owning an offset, or null.</summary>
    public DevPagemap? Load(DevicePrivateIndex offset)
    {
        lock (_lock)
        {
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
