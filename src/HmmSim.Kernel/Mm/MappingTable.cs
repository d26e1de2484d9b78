namespace HmmSim.Kernel;

/// <summary>folio->mapping is a pointer in the kernel; here it is a 32-bit handle into this table
/// so that struct page stays small. Handle 0 is NULL.</summary>
internal sealed class MappingTable
{
    private readonly Lock _lock = new();
    private object?[] _objects = new object?[64];
    private readonly Stack<uint> _free = new();
    private uint _next = 1;

    public uint Register(object mapping)
    {
        lock (_lock)
        {
            uint h = _free.Count > 0 ? _free.Pop() : _next++;
            if (h >= _objects.Length)
                Array.Resize(ref _objects, _objects.Length * 2);
            _objects[h] = mapping;
            return h;
        }
    }

    public void Unregister(uint handle)
    {
        lock (_lock)
        {
            _objects[handle] = null;
            _free.Push(handle);
        }
    }

    /// <summary>The object behind <paramref name="handle"/> is gone (an anon_vma freed by put_anon_vma): the
    /// handle resolves to nothing from now on and is never handed out again, since a folio that outlived
    /// its mappings may still hold it. Its slot, 8 bytes, stays.</summary>
    public void Retire(uint handle)
    {
        lock (_lock)
            Volatile.Write(ref _objects[handle], null);
    }

    /// <summary>Handles that still resolve to an object (anon_vmas and address spaces alive).</summary>
    public int CountLive()
    {
        lock (_lock)
        {
            int n = 0;
            foreach (var o in _objects)
                if (o is not null)
                    n++;
            return n;
        }
    }

    public object? Get(uint handle) => handle == 0 ? null : Volatile.Read(ref _objects)[handle];
}
