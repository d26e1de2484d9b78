using System.Buffers.Binary;
using HmmSim.Kernel;
using static HmmSim.Kernel.Mm;

namespace HmmSim.Tests.Mm;

/// <summary>A driver's batch of 4 KiB copies (copy_highpage of each pair, clear_highpage for a null
/// source), the data slots taken under one pool lock: every destination reads exactly as its source,
/// whatever each side held before (bytes, one word, nothing).</summary>
public class CopyHighpagesBatchTests
{
    private static byte[] Bytes(int seed)
    {
        var b = new byte[4096];
        for (int o = 0; o < b.Length; o += 4)
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), o * 7 + seed);
        return b;
    }

    private static byte[] Word(ulong w)
    {
        var b = new byte[4096];
        for (int o = 0; o < b.Length; o += 8)
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(o), w);
        return b;
    }

    private static byte[] Read(HmmSim.Kernel.Page page)
    {
        var b = new byte[4096];
        MemcpyFromPage(b, page);
        return b;
    }

    [Fact]
    public void EachDestinationReadsAsItsSourceWhateverEitherHeldBefore()
    {
        using var m = new Machine(new MachineConfig());
        var data = m.Kernel.Memmap.Data;
        var pages = new HmmSim.Kernel.Page[14];
        Assert.Equal(pages.Length, AllocPagesBulk(m.Kernel, pages));
        var from = pages.AsSpan(0, 7).ToArray();
        var to = pages.AsSpan(7, 7).ToArray();
        // Sources: bytes, one word, never written, bytes that are one word, bytes, none (clear), bytes.
        var want = new[] { Bytes(1), Word(0x1122334455667788), new byte[4096], Word(0x0102030405060708), Bytes(2), new byte[4096], Bytes(3) };
        MemcpyToPage(from[0], 0, want[0]);
        MemcpyToPage(from[1], 0, want[1]);
        // Bytes that are one word: stored as a word, then one byte changed and changed back.
        MemcpyToPage(from[3], 0, want[3]);
        MemcpyToPage(from[3], 5, [0xEE]);
        MemcpyToPage(from[3], 5, want[3].AsSpan(5, 1));
        MemcpyToPage(from[4], 0, want[4]);
        MemcpyToPage(from[6], 0, want[6]);
        from[5] = default;
        // Destinations: a slot already, a word, bytes, nothing, a word, bytes (cleared), nothing.
        MemcpyToPage(to[0], 0, Bytes(9));
        MemcpyToPage(to[1], 0, Word(0xAB));
        MemcpyToPage(to[2], 0, Bytes(8));
        MemcpyToPage(to[4], 0, Word(0xCD));
        MemcpyToPage(to[5], 0, Bytes(7));
        long slots = data.SlotsInUse;

        CopyHighpages(to, from);

        for (int i = 0; i < to.Length; i++)
            Assert.True(want[i].AsSpan().SequenceEqual(Read(to[i])), $"destination {i} reads other bytes than its source");
        // Sources keep what they had; destinations of words and of nothing hold no slot, and the copy
        // of bytes that are one word keeps only the word.
        Assert.True(want[0].AsSpan().SequenceEqual(Read(from[0])));
        Assert.Equal(0, SlotOf(to[2]));
        Assert.Equal(0, SlotOf(to[5]));
        Assert.True(SlotOf(to[1]) < 0 && SlotOf(to[3]) < 0, "a copy of one word holds the word");
        Assert.True(SlotOf(to[0]) > 0 && SlotOf(to[4]) > 0 && SlotOf(to[6]) > 0, "a copy of bytes holds a slot");
        // Slots: to[0] kept its own, to[4] and to[6] took one each, to[2] and to[5] gave theirs back.
        Assert.Equal(slots, data.SlotsInUse);
        foreach (var p in pages)
            p.Folio.Put();
        Assert.Equal(0, data.SlotsInUse);
        Assert.Equal(0, data.SameFilledPages);
    }

    private static int SlotOf(HmmSim.Kernel.Page page) => page.Desc.Private;

    [Fact]
    public void PagesOfAnotherMemmapAreCopiedOneByOne()
    {
        // Two machines: each page's bytes live in its own memmap's pool, so the batch cannot settle the
        // slots under one lock and copies pair by pair.
        using var m1 = new Machine(new MachineConfig());
        using var m2 = new Machine(new MachineConfig());
        var to = new HmmSim.Kernel.Page[2];
        var other = new HmmSim.Kernel.Page[1];
        Assert.Equal(2, AllocPagesBulk(m1.Kernel, to));
        Assert.Equal(1, AllocPagesBulk(m2.Kernel, other));
        MemcpyToPage(other[0], 0, Bytes(6));
        MemcpyToPage(to[1], 0, Bytes(7));
        CopyHighpages(to, [other[0], default]);
        Assert.True(Bytes(6).AsSpan().SequenceEqual(Read(to[0])));
        Assert.True(new byte[4096].AsSpan().SequenceEqual(Read(to[1])));
        Assert.Equal(1, m1.Kernel.Memmap.Data.SlotsInUse);
        Assert.Equal(1, m2.Kernel.Memmap.Data.SlotsInUse);
        foreach (var p in to)
            p.Folio.Put();
        other[0].Folio.Put();
    }

    [Fact]
    public void ABatchMustHaveOneSourcePerDestination()
    {
        using var m = new Machine(new MachineConfig());
        var pages = new HmmSim.Kernel.Page[3];
        Assert.Equal(3, AllocPagesBulk(m.Kernel, pages));
        Assert.Throws<ArgumentException>(() => CopyHighpages(pages.AsSpan(0, 2), pages.AsSpan(2, 1)));
        foreach (var p in pages)
            p.Folio.Put();
    }

    [Theory]
    [InlineData(HmmSim.DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(HmmSim.DevicePrivateDesign.DeviceAddressSpace)]
    public void ACopyFromDevicePrivateMemoryIsABug(HmmSim.DevicePrivateDesign design)
    {
        // The driver must copy from the backing page: the CPU cannot address device-private memory.
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var pgmap = new DevPagemap(MemoryType.DevicePrivate, this, new DevPagemapOps { FolioFree = _ => { }, MigrateToRam = _ => VmFaultResult.None });
        Assert.Equal(HmmSim.Kernel.Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 256UL << 20, "test"));
        var dpage = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 0);
        var sys = new HmmSim.Kernel.Page[2];
        Assert.Equal(2, AllocPagesBulk(m.Kernel, sys));
        MemcpyToPage(sys[0], 0, Bytes(5));
        Assert.Throws<KernelBugException>(() => CopyHighpages(sys, [sys[1], dpage]));
        Assert.Throws<KernelBugException>(() => CopyHighpages([sys[1], dpage], sys));
        // Nothing was copied: each page still reads as it did.
        Assert.True(Bytes(5).AsSpan().SequenceEqual(Read(sys[0])));
        Assert.True(new byte[4096].AsSpan().SequenceEqual(Read(sys[1])));
        foreach (var p in sys)
            p.Folio.Put();
    }
}
