using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>A field of struct page / struct folio, as the census names it.</summary>
internal enum PageField
{
    /// <summary>page->flags (the census records which bit).</summary>
    Flags,
    /// <summary>_refcount.</summary>
    RefCount,
    /// <summary>_mapcount of a page.</summary>
    MapCount,
    /// <summary>folio->_large_mapcount.</summary>
    LargeMapcount,
    /// <summary>folio->_entire_mapcount.</summary>
    EntireMapcount,
    /// <summary>folio->_pincount.</summary>
    PinCount,
    /// <summary>The folio order (folio->_flags_1's order byte).</summary>
    Order,
    /// <summary>compound_head of a tail page.</summary>
    CompoundHead,
    /// <summary>folio->mapping (anon_vma or address_space).</summary>
    Mapping,
    /// <summary>folio->index.</summary>
    Index,
    /// <summary>page->private (the model keeps a CPU page's data slot there).</summary>
    Private,
    /// <summary>folio->pgmap.</summary>
    Pgmap,
    /// <summary>page->zone_device_data.</summary>
    ZoneDeviceData,
    /// <summary>folio->lru.</summary>
    Lru,
}

/// <summary>The census of struct page / folio accesses on device-private folios, and the
/// DevicePageMetadata=Minimal descriptor it leads to. Off by default: every hook is one read of a
/// static counter (<see cref="Active"/>) on the accessor paths, nothing more. With a kernel's census
/// recording, each access to a device-private folio's fields is counted by the kernel function that
/// made it (the first frame outside the page and folio helpers), field (and flag bit), read or write.
/// With the Minimal variant, a kernel refuses (BUG) any access to a field its descriptor lacks.</summary>
internal sealed class DevicePageCensus
{
    /// <summary>Kernels whose census records or enforces: 0 keeps every hook to a single branch.</summary>
    internal static int Active;

    // Async-local: a session records the machines its own flow (and the tasks it starts) drives, not
    // those another caller in the same process drives at the same time (tests run side by side).
    private static readonly AsyncLocal<DevicePageCensus?> _global = new();

    /// <summary>Starts a census that records for every kernel of the process (a battery boots many
    /// machines); null stops it. Returns the census that was recording before.</summary>
    /// <summary>Stops <paramref name="census"/> being the process-wide one, if it still is.</summary>
    internal static void ClearGlobal(DevicePageCensus census)
    {
        if (_global.Value == census)
            _global.Value = null;
    }

    /// <summary>Record only this kernel's accesses (null: every kernel).</summary>
    internal KernelState? Only { get; init; }

    internal static DevicePageCensus? SetGlobal(DevicePageCensus? census)
    {
        census?.Start();
        var old = _global.Value;
        _global.Value = census;
        if (old != census)
            old?.Stop();
        return old;
    }

    private readonly ConcurrentDictionary<(string Function, string Field, bool Write), long> _counts = new();
    private bool _recording;

    /// <summary>The fields a Minimal descriptor holds; null when every field is allowed (struct page).</summary>
    internal ulong? AllowedFields { get; init; }
    internal bool Recording => Volatile.Read(ref _recording);

    internal void Start()
    {
        if (!_recording)
        {
            _recording = true;
            Interlocked.Increment(ref Active);
        }
    }

    internal void Stop()
    {
        if (_recording)
        {
            _recording = false;
            Interlocked.Decrement(ref Active);
        }
    }

    internal IReadOnlyList<(string Function, string Field, bool Write, long Count)> Snapshot() =>
        [.. _counts.Select(kv => (kv.Key.Function, kv.Key.Field, kv.Key.Write, kv.Value))
            .OrderBy(r => r.Field, StringComparer.Ordinal).ThenBy(r => r.Function, StringComparer.Ordinal).ThenBy(r => r.Write)];

    internal void Clear() => _counts.Clear();

    /// <summary>An access to <paramref name="field"/> of the page at <paramref name="index"/> of
    /// <paramref name="section"/>; <paramref name="bits"/> names the flag bits of a Flags access.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Note(MemSection section, int index, PageField field, bool write, PageFlags bits = 0)
    {
        if (Active != 0)
            Slow(section, index, field, write, bits);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Slow(MemSection section, int index, PageField field, bool write, PageFlags bits)
    {
        if (section is null || section.Zone < ZoneType.Device)
            return;
        var own = section.Owner.Kernel.Census;
        if (own is null && _global.Value is null)
            return;
        // Device-private by zone or pgmap->type, read straight from the section so the census does not count itself.
        if (section.Zone != ZoneType.DevicePrivate && section.SubsectionPgmap?[index >> MemSection.SubsectionShift]?.Type != MemoryType.DevicePrivate)
            return;
        if (own?.AllowedFields is { } allowed && (allowed & (1UL << (int)field)) == 0)
            ThrowHelper.KernelBug($"DevicePageMetadata=Minimal: {Caller()} touched {field} of a device-private page, which the minimal descriptor does not hold");
        var census = own is { Recording: true } ? own : _global.Value;
        if (census is null || !census.Recording || census.Only is { } only && only != section.Owner.Kernel)
            return;
        if (field == PageField.Flags && bits == 0)
        {
            census.Count("flags:zone", write);
        }
        else if (field == PageField.Flags && bits != (PageFlags)uint.MaxValue)
        {
            for (uint b = (uint)bits & ~(uint)PageFlags.HighByteMask; b != 0; b &= b - 1)
                census.Count("flags:" + (PageFlags)(b & (0 - b)), write);
            if (((uint)bits & (uint)PageFlags.HighByteMask) != 0)
                census.Count("flags:order/index byte", write);
        }
        else
        {
            census.Count(field == PageField.Flags ? "flags:(whole word)" : field.ToString(), write);
        }
    }

    /// <summary>Walking the stack is what a census access costs; past this many accesses of one field
    /// the function is sampled (1 in <see cref="SampleEvery"/>), the total stays exact.</summary>
    internal const int ExactAttribution = 2000, SampleEvery = 256;

    /// <summary>The function named for the exact total of each field.</summary>
    internal const string AllFunctions = "(all)";

    private void Count(string field, bool write)
    {
        long total = _counts.AddOrUpdate((AllFunctions, field, write), 1, (_, n) => n + 1);
        if (total <= ExactAttribution || total % SampleEvery == 0)
            _counts.AddOrUpdate((Caller(), field, write), 1, (_, n) => n + 1);
    }

    /// <summary>The kernel function that made the access: the first frame outside the page and folio
    /// helpers and this class, as Type.Method (a lambda reported as the method that holds it).</summary>
    private static string Caller()
    {
        // Walk one frame at a time: the kernel function is a few frames up, and capturing the whole
        // stack (selftests run deep) is what would make the census slow.
        for (int depth = 2; depth < 24; depth++)
        {
            var m = new StackFrame(depth, false).GetMethod();
            var t = m?.DeclaringType;
            if (m is null || t is null)
                return "?";
            while (t.DeclaringType is not null && t.Name.StartsWith('<'))
                t = t.DeclaringType;
            if (t == typeof(Page) || t == typeof(Folio) || t == typeof(DevicePageCensus))
                continue;
            string name = m.Name;
            int lt = name.IndexOf('<'), gt = name.IndexOf('>');
            if (lt >= 0 && gt > lt + 1)
                name = name[(lt + 1)..gt];
            return $"{t.Name}.{name}";
        }
        return "?";
    }
}
