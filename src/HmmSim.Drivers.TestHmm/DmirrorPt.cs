using System.Buffers;

namespace HmmSim.Drivers.TestHmm;

/// <summary>struct dmirror's page table (dmirror-&gt;pt): an xarray keyed by page index whose entries are
/// struct page pointers tagged with xa_tag_pointer (0 = read-only, DPT_XA_TAG_ATOMIC, DPT_XA_TAG_WRITE).
/// Like the xarray's leaf nodes it keeps entries in fixed arrays, one leaf of 512 slots per 2 MiB of
/// address, found through a map of leaves. An entry is one word, as the xarray's is: the page as
/// migrate_pfn encodes it (its PFN, or its device-private offset in the redesign) with the tag in the top
/// byte, so a mirror of a GPU-sized working set costs 8 B per page and nothing the GC has to trace. A
/// leaf is freed when its last entry is erased, as the xarray frees an empty node (a few are kept for
/// reuse). Not thread-safe: the caller holds dmirror-&gt;mutex, as test_hmm does around every xa_* call
/// on the mirror.</summary>
internal sealed class DmirrorPt(KernelState kernel)
{
    internal const int LeafShift = 9;
    internal const int LeafSlots = 1 << LeafShift;
    private const ulong SlotMask = LeafSlots - 1;
    /// <summary>Set in a slot's tag byte when the slot holds an entry (an entry may be a tagged NULL,
    /// as xa_tag_pointer(NULL, tag) is for a non-zero tag, so the page alone cannot say).</summary>
    private const byte Present = 0x80;
    private const int TagShift = 56;
    private const ulong PageMask = (1UL << TagShift) - 1;

    private sealed class Leaf
    {
        public readonly ulong[] Entries = new ulong[LeafSlots];
        public int Count;
    }

    private readonly Dictionary<ulong, Leaf> _leaves = [];
    // Emptied leaves kept for reuse, as the xarray's nodes go back to their slab cache: a migration to the
    // device and back empties and refills the same leaves every round, and must not make garbage doing it.
    // Up to 4,096 (8 GiB of mirrored address, 35 MiB of leaves), so a round trip of any size a benchmark
    // uses refills from them.
    private const int SpareLeaves = 4096;
    private readonly Stack<Leaf> _spare = new();
    // The leaf of the last access: the driver walks the table in address order, so most lookups hit it.
    private ulong _cachedKey = ulong.MaxValue;
    private Leaf? _cached;

    /// <summary>Entries present.</summary>
    public long Count { get; private set; }

    /// <summary>Leaves allocated (each covers 512 consecutive page indices).</summary>
    public int LeafCount => _leaves.Count;

    /// <summary>xa_load: the entry at <paramref name="index"/>, if there is one.</summary>
    public bool TryLoad(ulong index, out Page page, out byte tag)
    {
        var leaf = Find(index >> LeafShift);
        int slot = (int)(index & SlotMask);
        ulong e = leaf is null ? 0 : leaf.Entries[slot];
        if (e == 0)
        {
            page = default;
            tag = 0;
            return false;
        }
        (page, tag) = Decode(e);
        return true;
    }

    /// <summary>xa_store(xa_tag_pointer(page, tag)): replaces any entry at <paramref name="index"/>.</summary>
    public void Store(ulong index, Page page, byte tag)
    {
        if (tag >= Present)
            throw new ArgumentOutOfRangeException(nameof(tag), tag, "a tag is the low bits of a pointer");
        ulong key = index >> LeafShift;
        var leaf = Find(key);
        if (leaf is null)
        {
            leaf = _spare.Count > 0 ? _spare.Pop() : new Leaf();
            _leaves.Add(key, leaf);
            _cachedKey = key;
            _cached = leaf;
        }
        int slot = (int)(index & SlotMask);
        if (leaf.Entries[slot] == 0)
        {
            leaf.Count++;
            Count++;
        }
        leaf.Entries[slot] = (page.IsNull ? 0 : MigratePfn.FromPage(page)) | (ulong)(tag | Present) << TagShift;
    }

    private (Page Page, byte Tag) Decode(ulong entry) =>
        (MigratePfn.ToPage(kernel, entry & PageMask), (byte)((entry >> TagShift) & ~(ulong)Present));

    /// <summary>xa_erase of one index.</summary>
    public void Erase(ulong index) => EraseRange(index, index);

    /// <summary>xa_erase of every entry in [<paramref name="first"/>, <paramref name="last"/>], inclusive as
    /// xa_for_each_range is. Costs one step per leaf the range covers, or per leaf present when the range
    /// is wider than the table (an invalidation of the whole address space).</summary>
    public void EraseRange(ulong first, ulong last)
    {
        if (first > last || Count == 0)
            return;
        ulong firstKey = first >> LeafShift, lastKey = last >> LeafShift;
        if (lastKey - firstKey < (ulong)_leaves.Count)
        {
            for (ulong key = firstKey; ; key++)
            {
                if (_leaves.TryGetValue(key, out var leaf))
                    EraseInLeaf(key, leaf, first, last);
                if (key == lastKey)
                    break;
            }
            return;
        }
        // Removing from a Dictionary while enumerating it is allowed (it does not invalidate the enumerator).
        foreach (var (key, leaf) in _leaves)
        {
            if (key >= firstKey && key <= lastKey)
                EraseInLeaf(key, leaf, first, last);
        }
    }

    /// <summary>xa_destroy.</summary>
    public void Clear()
    {
        _leaves.Clear();
        _cached = null;
        _cachedKey = ulong.MaxValue;
        Count = 0;
    }

    /// <summary>xa_for_each_range over [<paramref name="first"/>, <paramref name="last"/>] (inclusive), in
    /// index order. The table must not change during the walk.</summary>
    public RangeEnumerator ForEachRange(ulong first, ulong last) => new(this, first, last);

    internal Entry EntryAt(ulong index, ulong entry)
    {
        var (page, tag) = Decode(entry);
        return new Entry(index, page, tag);
    }

    public readonly record struct Entry(ulong Index, Page Page, byte Tag);

    /// <summary>Walks the leaves the range covers in order: leaf by leaf when the range spans fewer
    /// leaves than the table holds, otherwise the table's own leaves sorted (a rented array, returned by
    /// Dispose, which foreach calls).</summary>
    public ref struct RangeEnumerator
    {
        private readonly DmirrorPt _pt;
        private readonly ulong _first, _last, _firstKey, _lastKey;
        private readonly ulong[]? _keys;
        private readonly int _keyCount;
        private int _keyPos;
        private ulong _nextKey, _key;
        private bool _exhausted;
        private Leaf? _leaf;
        private int _slot;

        internal RangeEnumerator(DmirrorPt pt, ulong first, ulong last)
        {
            _pt = pt;
            _first = first;
            _last = last;
            _firstKey = _nextKey = first >> LeafShift;
            _lastKey = last >> LeafShift;
            _exhausted = first > last || pt.Count == 0;
            if (!_exhausted && _lastKey - _firstKey >= (ulong)pt._leaves.Count)
            {
                _keys = ArrayPool<ulong>.Shared.Rent(pt._leaves.Count);
                foreach (ulong key in pt._leaves.Keys)
                    if (key >= _firstKey && key <= _lastKey)
                        _keys[_keyCount++] = key;
                Array.Sort(_keys, 0, _keyCount);
            }
        }

        public readonly RangeEnumerator GetEnumerator() => this;

        public Entry Current { get; private set; }

        public bool MoveNext()
        {
            while (_leaf is not null || NextLeaf())
            {
                int end = _key == _lastKey ? (int)(_last & SlotMask) : LeafSlots - 1;
                for (; _slot <= end; _slot++)
                {
                    ulong e = _leaf!.Entries[_slot];
                    if (e != 0)
                    {
                        Current = _pt.EntryAt((_key << LeafShift) + (ulong)_slot, e);
                        _slot++;
                        return true;
                    }
                }
                _leaf = null;
            }
            return false;
        }

        private bool NextLeaf()
        {
            while (true)
            {
                ulong key;
                if (_keys is not null)
                {
                    if (_keyPos == _keyCount)
                        return false;
                    key = _keys[_keyPos++];
                }
                else
                {
                    if (_exhausted)
                        return false;
                    key = _nextKey;
                    if (key == _lastKey)
                        _exhausted = true;
                    else
                        _nextKey++;
                }
                if (_pt._leaves.TryGetValue(key, out var leaf))
                {
                    _key = key;
                    _leaf = leaf;
                    _slot = key == _firstKey ? (int)(_first & SlotMask) : 0;
                    return true;
                }
            }
        }

        public readonly void Dispose()
        {
            if (_keys is not null)
                ArrayPool<ulong>.Shared.Return(_keys);
        }
    }

    private Leaf? Find(ulong key)
    {
        if (key == _cachedKey)
            return _cached;
        if (!_leaves.TryGetValue(key, out var leaf))
            return null;
        _cachedKey = key;
        _cached = leaf;
        return leaf;
    }

    private void EraseInLeaf(ulong key, Leaf leaf, ulong first, ulong last)
    {
        ulong baseIndex = key << LeafShift;
        int from = first > baseIndex ? (int)(first - baseIndex) : 0;
        int to = last - baseIndex < SlotMask ? (int)(last - baseIndex) : LeafSlots - 1;
        if (from == 0 && to == LeafSlots - 1)
        {
            Count -= leaf.Count;
            leaf.Count = 0;
        }
        else
        {
            for (int s = from; s <= to; s++)
            {
                if (leaf.Entries[s] == 0)
                    continue;
                leaf.Entries[s] = 0;
                leaf.Count--;
                Count--;
            }
        }
        if (leaf.Count == 0)
        {
            _leaves.Remove(key);
            if (_spare.Count < SpareLeaves)
            {
                Array.Clear(leaf.Entries);
                _spare.Push(leaf);
            }
            if (_cachedKey == key)
            {
                _cached = null;
                _cachedKey = ulong.MaxValue;
            }
        }
    }
}
