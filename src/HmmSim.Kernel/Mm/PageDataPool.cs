namespace HmmSim.Kernel;

/// <summary>The bytes behind pages that have been written: 4 KiB slots carved from 2 MiB chunks,
/// recycled through a free stack, so steady-state faults allocate nothing on the managed heap.</summary>
internal sealed class PageDataPool
{
    private const int SlotsPerChunkShift = 9;
    private const int SlotsPerChunk = 1 << SlotsPerChunkShift;
    private const int PageSize = (int)Arch.PageSize;

    private readonly Lock _lock = new();
    private byte[][] _chunks = new byte[16][];
    private int _chunkCount;
    private int[] _free = new int[1024];
    private int _freeCount;
    private long _inUse;

    public static ReadOnlySpan<byte> Zeros => _zeros;
    private static readonly byte[] _zeros = new byte[PageSize];

    public long SlotsInUse => Interlocked.Read(ref _inUse);
    public long BytesReserved => (long)_chunkCount * SlotsPerChunk * PageSize;

    public Span<byte> Get(int slot) =>
        _chunks[slot >> SlotsPerChunkShift].AsSpan((slot & (SlotsPerChunk - 1)) * PageSize, PageSize);

    /// <summary>Gives <paramref name="slotPlusOne"/> a slot unless another thread did first: zeroed, or left
    /// as it is when the caller is about to overwrite all 4 KiB.</summary>
    public void AllocateFor(ref int slotPlusOne, bool zero = true)
    {
        lock (_lock)
        {
            if (slotPlusOne != 0)
                return;
            if (_freeCount == 0)
                GrowLocked();
            int slot = _free[--_freeCount];
            if (zero)
                Get(slot).Clear();
            _inUse++;
            Volatile.Write(ref slotPlusOne, slot + 1);
        }
    }

    /// <summary>Slots, under one lock, for every page of <paramref name="dst"/> whose page at the same index
    /// in <paramref name="src"/> holds data and which has none yet: the destination of a folio-sized copy.
    /// Left as they are (the copy overwrites them); the per-page lock was most of a small copy's cost.</summary>
    public void AllocateForCopy(Span<PageDesc> dst, ReadOnlySpan<PageDesc> src)
    {
        lock (_lock)
        {
            for (int i = 0; i < dst.Length; i++)
            {
                if (src[i].Private == 0 || dst[i].Private != 0)
                    continue;
                if (_freeCount == 0)
                    GrowLocked();
                _inUse++;
                Volatile.Write(ref dst[i].Private, _free[--_freeCount] + 1);
            }
        }
    }

    /// <summary>Returns the slots of a block of pages being freed, under one lock.</summary>
    public void ReleaseRange(Span<PageDesc> pages)
    {
        int n = 0;
        foreach (ref readonly var d in pages)
            if (d.Private != 0)
                n++;
        if (n == 0)
            return;
        lock (_lock)
        {
            foreach (ref var d in pages)
            {
                if (d.Private == 0)
                    continue;
                PushFree(d.Private - 1);
                d.Private = 0;
                _inUse--;
            }
        }
    }

    /// <summary>A new 2 MiB chunk: all its slots go on the free stack.</summary>
    private void GrowLocked()
    {
        if (_chunkCount == _chunks.Length)
            Array.Resize(ref _chunks, _chunks.Length * 2);
        _chunks[_chunkCount] = GC.AllocateUninitializedArray<byte>(SlotsPerChunk * PageSize);
        _chunks[_chunkCount].AsSpan().Clear();
        for (int i = SlotsPerChunk - 1; i >= 0; i--)
            PushFree((_chunkCount << SlotsPerChunkShift) + i);
        _chunkCount++;
    }

    public void Release(ref int slotPlusOne)
    {
        lock (_lock)
        {
            if (slotPlusOne == 0)
                return;
            PushFree(slotPlusOne - 1);
            slotPlusOne = 0;
            _inUse--;
        }
    }

    private void PushFree(int slot)
    {
        if (_freeCount == _free.Length)
            Array.Resize(ref _free, _free.Length * 2);
        _free[_freeCount++] = slot;
    }
}
