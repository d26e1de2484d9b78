using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>One row of the device-page census: a kernel function touched a field of a
/// device-private folio's struct page / folio this many times.</summary>
/// <param name="Function">The kernel function (Type.Method of the model, named after the kernel's).</param>
/// <param name="Field">The field: RefCount, MapCount, LargeMapcount, EntireMapcount, PinCount, Order,
/// CompoundHead, Mapping, Index, Private, Pgmap, or flags:BIT (flags:zone for the zone bits).</param>
/// <param name="Write">A write (or read-modify-write) rather than a read.</param>
/// <param name="Count">How many accesses: exact for Function "(all)"; per function, exact for the first
/// 2,000 accesses of a field and sampled 1 in 256 after that (walking the stack is the census's cost).</param>
public sealed record DevicePageAccess(string Function, string Field, bool Write, long Count);

/// <summary>Records every access to the struct page / folio fields of device-private folios, by
/// every machine the caller's flow drives (this thread and the tasks it starts), from
/// <see cref="Start"/> until disposed. Off, it costs the kernel
/// one branch per field accessor. Only one session records at a time.</summary>
public sealed class DevicePageCensusSession : IDisposable
{
    private readonly K.DevicePageCensus _census;
    private bool _disposed;

    private DevicePageCensusSession(K.DevicePageCensus census) => _census = census;

    /// <summary>Starts recording for every machine, or only <paramref name="only"/>; a session already
    /// recording is stopped (its rows stay readable).</summary>
    public static DevicePageCensusSession Start(Machine? only = null)
    {
        var s = new DevicePageCensusSession(new K.DevicePageCensus { Only = only?.Kernel });
        K.DevicePageCensus.SetGlobal(s._census);
        return s;
    }

    /// <summary>The rows so far, ordered by field, then function.</summary>
    public IReadOnlyList<DevicePageAccess> Rows() =>
        [.. _census.Snapshot().Select(r => new DevicePageAccess(r.Function, r.Field, r.Write, r.Count))];

    /// <summary>The fields (the part of <see cref="DevicePageAccess.Field"/> before any ':') that were touched.</summary>
    public IReadOnlyList<string> FieldsUsed() =>
        [.. Rows().Select(r => r.Field.Split(':')[0] == "flags" ? "Flags" : r.Field).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>Stops recording.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _census.Stop();
        K.DevicePageCensus.ClearGlobal(_census);
    }
}
