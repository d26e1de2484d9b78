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

    public object? Get(uint handle) => handle == 0 ? null : Volatile.Read(ref _objects)[handle];
}
