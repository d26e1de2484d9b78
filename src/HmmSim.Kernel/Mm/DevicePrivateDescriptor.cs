namespace HmmSim.Kernel;

/// <summary>DevicePageMetadata=Minimal: a device-private page described by a "struct device_private"
/// holding only what the census (DevicePageCensus) shows the kernel touches on device-private folios
/// across the selftests and the model-based tests. Its layout, in the kernel's sizes:
/// flags (8: PG_locked, head/tail, anon, anon-exclusive, dirty, swapbacked, uptodate), _refcount (4),
/// _mapcount (4), mapping (8: the anon_vma rmap needs), index (8: the linear page index rmap needs),
/// compound_head (8, the order in the first tail's). The large-folio counters (_large_mapcount,
/// _entire_mapcount, _pincount) live in the first tails' words, as struct folio keeps them. pgmap
/// costs nothing per page: descriptors are an array owned by their pagemap, so the pagemap is the
/// array's owner. lru, private and zone_device_data are not held: the census finds no kernel access
/// to them on a device-private folio (drivers keep their per-page data themselves).</summary>
internal static class DevicePrivateDescriptor
{
    /// <summary>The fields the descriptor holds (read and write allowed), with their bytes per page.</summary>
    internal static readonly (PageField Field, int Bytes)[] Layout =
    [
        (PageField.Flags, 8),
        (PageField.RefCount, 4),
        (PageField.MapCount, 4),
        (PageField.Mapping, 8),
        (PageField.Index, 8),
        (PageField.CompoundHead, 8),
        (PageField.Order, 0),            // in the first tail's flags, as folio->_flags_1
        (PageField.LargeMapcount, 0),    // first tail's words, as struct folio
        (PageField.EntireMapcount, 0),
        (PageField.PinCount, 0),
        (PageField.Pgmap, 0),            // the owner of the descriptor array
    ];

    /// <summary>Bytes per device page.</summary>
    internal static int BytesPerPage { get; } = Layout.Sum(f => f.Bytes);

    /// <summary>The held fields as a bit mask over <see cref="PageField"/>.</summary>
    internal static ulong FieldMask { get; } = Layout.Aggregate(0UL, (m, f) => m | 1UL << (int)f.Field);

    /// <summary>The held fields by name.</summary>
    internal static string[] FieldNames { get; } = [.. Layout.Select(f => f.Field.ToString())];
}
