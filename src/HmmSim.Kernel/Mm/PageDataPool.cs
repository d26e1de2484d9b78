using System.Numerics;
using System.Runtime.InteropServices;

namespace HmmSim.Kernel;

/// <summary>The bytes behind pages that have been written: 4 KiB slots carved from 2 MiB chunks,
/// recycled through a free stack, so steady-state faults allocate nothing on the managed heap.
/// A page whose 4 KiB are one 8-byte word repeated keeps only the word (zswap_is_page_same_filled and
/// zswap_fill_page): <see cref="PageDesc.Private"/> is then minus (word handle + 1), and the first write
/// that is not a whole same-filled page materialises the bytes.</summary>
internal sealed class PageDataPool
{
    private const int WordsPerChunkShift = 16;
    private const int WordsPerChunk = 1 << WordsPerChunkShift;

    private const int SlotsPerChunkShift = 9;
    private const int SlotsPerChunk = 1 << SlotsPerChunkShift;
    private const int PageSize = (int)Arch.PageSize;

    private Spinlock _lock;   // a spinlock: every section is short and never blocks (not zone->lock)
    private byte[][] _chunks = new byte[16][];
    private int _chunkCount;
    private int[] _free = new int[1024];
    private int _freeCount;
    // Chunks none of whose slots is in use or on the free stack: a folio-sized copy takes one whole, so
    // a THP's 512 pages lie in order in 2 MiB and the copies stream through memory as one block.
    private int[] _wholeChunks = new int[16];
    private int _wholeCount;
    private long _inUse;
    private ulong[][] _wordChunks = new ulong[4][];
    private int _wordCount;
    private int _wordFreePlusOne;   // free word handles link through the words themselves
    private long _wordsInUse;

    public static ReadOnlySpan<byte> Zeros => _zeros;
    private static readonly byte[] _zeros = new byte[PageSize];

    public long SlotsInUse => Interlocked.Read(ref _inUse);
    public long BytesReserved => (long)_chunkCount * SlotsPerChunk * PageSize + (long)((_wordCount + WordsPerChunk - 1) >> WordsPerChunkShift) * WordsPerChunk * 8;
    /// <summary>Pages held as one repeated word.</summary>
    public long SameFilledPages => Interlocked.Read(ref _wordsInUse);

    /// <summary>zswap_is_page_same_filled: whether the 4 KiB are one 8-byte word repeated, and which.</summary>
    public static bool IsSameFilled(ReadOnlySpan<byte> page, out ulong word)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(page);
        word = words[0];
        return words[1..].IndexOfAnyExcept(word) < 0;
    }

    /// <summary>The word a same-filled page holds (<paramref name="privateValue"/> below zero).</summary>
    public ulong Word(int privateValue) => WordRef(-privateValue - 1);

    private ref ulong WordRef(int handle) => ref _wordChunks[handle >> WordsPerChunkShift][handle & (WordsPerChunk - 1)];

    /// <summary>zswap_fill_page at byte <paramref name="offset"/> of a page filled with <paramref name="word"/>.</summary>
    public static void Fill(Span<byte> dst, ulong word, int offset)
    {
        // Byte o of the page is byte (o % 8) of the little-endian word: rotate so dst[0] is right.
        ulong w = BitOperations.RotateRight(word, (offset & 7) * 8);
        int whole = dst.Length & ~7;
        MemoryMarshal.Cast<byte, ulong>(dst[..whole]).Fill(w);
        for (int i = whole; i < dst.Length; i++)
            dst[i] = (byte)(w >> ((i & 7) * 8));
    }

    /// <summary>The page now reads as <paramref name="word"/> repeated; its bytes, if any, are released.
    /// A zero word is the same as never written.</summary>
    public void SetWord(ref int privateValue, ulong word)
    {
        using (_lock.Acquire())
            SetWordLocked(ref privateValue, word);
    }

    private void SetWordLocked(ref int privateValue, ulong word)
    {
        int v = privateValue;
        if (v < 0 && word != 0)
        {
            WordRef(-v - 1) = word;
            return;
        }
        if (v > 0)
        {
            PushFree(v - 1);
            _inUse--;
        }
        else if (v < 0)
        {
            FreeWordLocked(-v - 1);
        }
        Volatile.Write(ref privateValue, word == 0 ? 0 : -AllocWordLocked(word) - 1);
    }

    private int AllocWordLocked(ulong word)
    {
        int h;
        if (_wordFreePlusOne != 0)
        {
            h = _wordFreePlusOne - 1;
            _wordFreePlusOne = (int)WordRef(h);
        }
        else
        {
            h = _wordCount++;
            int c = h >> WordsPerChunkShift;
            if (c == _wordChunks.Length)
                Array.Resize(ref _wordChunks, c * 2);
            _wordChunks[c] ??= new ulong[WordsPerChunk];
        }
        WordRef(h) = word;
        _wordsInUse++;
        return h;
    }

    private void FreeWordLocked(int h)
    {
        WordRef(h) = (ulong)_wordFreePlusOne;
        _wordFreePlusOne = h + 1;
        _wordsInUse--;
    }

    public Span<byte> Get(int slot) =>
        _chunks[slot >> SlotsPerChunkShift].AsSpan((slot & (SlotsPerChunk - 1)) * PageSize, PageSize);

    /// <summary>Gives <paramref name="slotPlusOne"/> a slot unless another thread did first: zeroed (or
    /// filled with the word of a same-filled page), or left as it is when the caller is about to
    /// overwrite all 4 KiB.</summary>
    public void AllocateFor(ref int slotPlusOne, bool zero = true)
    {
        using (_lock.Acquire())
        {
            int v = slotPlusOne;
            if (v > 0)
                return;
            if (_freeCount == 0)
                GrowLocked();
            int slot = _free[--_freeCount];
            if (v < 0)
            {
                if (zero)
                    Fill(Get(slot), Word(v), 0);
                FreeWordLocked(-v - 1);
            }
            else if (zero)
            {
                Get(slot).Clear();
            }
            _inUse++;
            Volatile.Write(ref slotPlusOne, slot + 1);
        }
    }

    /// <summary>The bookkeeping of a folio-sized copy under one lock (the per-page lock was most of a
    /// small copy's cost): a destination page whose source is unwritten or held as a word takes the
    /// word; any other gets a slot, left as it is for the caller's copy. Afterwards, exactly the pages
    /// with a slot on both sides still need their bytes; the caller then hands the copies that turned out
    /// to be one word to <see cref="KeepWords(Span{PageDesc})"/>. The source's bytes are not probed here: a probe of a
    /// cold page costs a cache miss per page that the copy, streaming through it, does not.</summary>
    public void AllocateForCopy(Span<PageDesc> dst, ReadOnlySpan<PageDesc> src)
    {
        using (_lock.Acquire())
        {
            if (NeedsWholeChunk(dst, src))
            {
                int first = TakeWholeChunkLocked() << SlotsPerChunkShift;
                for (int i = 0; i < dst.Length; i++)
                {
                    if (dst[i].Private < 0)
                        FreeWordLocked(-dst[i].Private - 1);
                    Volatile.Write(ref dst[i].Private, first + i + 1);
                }
                _inUse += dst.Length;
                return;
            }
            for (int i = 0; i < dst.Length; i++)
                SettleCopyLocked(ref dst[i].Private, src[i].Private);
        }
    }

    /// <summary><see cref="AllocateForCopy"/> for pairs of pages anywhere in this pool's memmap (a window's
    /// 4 KiB copies): a null source page reads as never written (clear_highpage).</summary>
    public void AllocateForCopies(ReadOnlySpan<Page> dst, ReadOnlySpan<Page> src)
    {
        using (_lock.Acquire())
        {
            for (int i = 0; i < dst.Length; i++)
                SettleCopyLocked(ref dst[i].Desc.Private, src[i].IsNull ? 0 : src[i].Desc.Private);
        }
    }

    /// <summary>One destination of a copy from a page whose slot value is <paramref name="s"/>: the
    /// source's word (none if unwritten), or a slot of its own, kept if it has one already.</summary>
    private void SettleCopyLocked(ref int d, int s)
    {
        if (s <= 0)
        {
            SetWordLocked(ref d, s == 0 ? 0 : Word(s));
            return;
        }
        int v = d;
        if (v > 0)
            return;
        if (v < 0)
            FreeWordLocked(-v - 1);
        if (_freeCount == 0)
            GrowLocked();
        _inUse++;
        Volatile.Write(ref d, _free[--_freeCount] + 1);
    }

    /// <summary>A copy of a whole chunk's worth of pages that all hold bytes, into pages none of which has a slot.</summary>
    private static bool NeedsWholeChunk(ReadOnlySpan<PageDesc> dst, ReadOnlySpan<PageDesc> src)
    {
        if (dst.Length != SlotsPerChunk)
            return false;
        for (int i = 0; i < dst.Length; i++)
            if (src[i].Private <= 0 || dst[i].Private > 0)
                return false;
        return true;
    }

    /// <summary>After <see cref="AllocateForCopy"/>: copies the bytes of the page whose slot value is
    /// <paramref name="s"/> into the one whose value is <paramref name="d"/> when both hold bytes, and
    /// says whether those bytes are one word repeated (for <see cref="KeepWords(Span{PageDesc})"/>). The
    /// probe runs after the copy, on the source it just read: in the cache, and not behind the copy's
    /// stores as the destination would be.</summary>
    public bool CopyBytes(int d, int s)
    {
        if (d <= 0 || s <= 0)
            return false;
        var bytes = Get(s - 1);
        bytes.CopyTo(Get(d - 1));
        return IsSameFilled(bytes, out _);
    }

    /// <summary>After a folio-sized copy: every page whose bytes are one word repeated keeps only the word.</summary>
    public void KeepWords(Span<PageDesc> pages)
    {
        using (_lock.Acquire())
        {
            foreach (ref var d in pages)
                if (d.Private > 0 && IsSameFilled(Get(d.Private - 1), out ulong word))
                    SetWordLocked(ref d.Private, word);
        }
    }

    /// <summary><see cref="KeepWords(Span{PageDesc})"/> for pages anywhere in this pool's memmap.</summary>
    public void KeepWords(ReadOnlySpan<Page> pages)
    {
        using (_lock.Acquire())
        {
            foreach (var page in pages)
            {
                ref int v = ref page.Desc.Private;
                if (v > 0 && IsSameFilled(Get(v - 1), out ulong word))
                    SetWordLocked(ref v, word);
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
        using (_lock.Acquire())
        {
            if (IsWholeChunk(pages))
            {
                PushWholeChunk((pages[0].Private - 1) >> SlotsPerChunkShift);
                _inUse -= pages.Length;
                foreach (ref var d in pages)
                    d.Private = 0;
                return;
            }
            foreach (ref var d in pages)
            {
                if (d.Private == 0)
                    continue;
                if (d.Private < 0)
                {
                    FreeWordLocked(-d.Private - 1);
                }
                else
                {
                    PushFree(d.Private - 1);
                    _inUse--;
                }
                d.Private = 0;
            }
        }
    }

    /// <summary>Pages holding exactly the slots of one chunk, in order (a folio copied into a whole chunk).</summary>
    private static bool IsWholeChunk(ReadOnlySpan<PageDesc> pages)
    {
        if (pages.Length != SlotsPerChunk)
            return false;
        int first = pages[0].Private - 1;
        if (first < 0 || (first & (SlotsPerChunk - 1)) != 0)
            return false;
        for (int i = 1; i < pages.Length; i++)
            if (pages[i].Private != first + i + 1)
                return false;
        return true;
    }

    /// <summary>The free stack is empty: a whole chunk's slots go on it (a new chunk if none is whole).</summary>
    private void GrowLocked()
    {
        int chunk = TakeWholeChunkLocked();
        for (int i = SlotsPerChunk - 1; i >= 0; i--)
            PushFree((chunk << SlotsPerChunkShift) + i);
    }

    private int TakeWholeChunkLocked()
    {
        if (_wholeCount == 0)
        {
            // A new 2 MiB chunk, zeroed.
            if (_chunkCount == _chunks.Length)
                Array.Resize(ref _chunks, _chunks.Length * 2);
            _chunks[_chunkCount] = GC.AllocateUninitializedArray<byte>(SlotsPerChunk * PageSize);
            _chunks[_chunkCount].AsSpan().Clear();
            PushWholeChunk(_chunkCount++);
        }
        return _wholeChunks[--_wholeCount];
    }

    private void PushWholeChunk(int chunk)
    {
        if (_wholeCount == _wholeChunks.Length)
            Array.Resize(ref _wholeChunks, _wholeChunks.Length * 2);
        _wholeChunks[_wholeCount++] = chunk;
    }

    public void Release(ref int slotPlusOne)
    {
        using (_lock.Acquire())
        {
            if (slotPlusOne == 0)
                return;
            if (slotPlusOne < 0)
            {
                FreeWordLocked(-slotPlusOne - 1);
            }
            else
            {
                PushFree(slotPlusOne - 1);
                _inUse--;
            }
            slotPlusOne = 0;
        }
    }

    private void PushFree(int slot)
    {
        if (_freeCount == _free.Length)
            Array.Resize(ref _free, _free.Length * 2);
        _free[_freeCount++] = slot;
    }
}
