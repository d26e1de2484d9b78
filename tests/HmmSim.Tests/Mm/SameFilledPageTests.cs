using System.Buffers.Binary;

namespace HmmSim.Tests.Mm;

/// <summary>Same-filled pages (zswap_is_page_same_filled): a whole-page store or copy of one repeated
/// 8-byte word keeps the word, anything else keeps bytes, and every byte read back is exact through
/// every path that moves page data.</summary>
public class SameFilledPageTests
{
    private const int Pages = 1024;   // two PMDs
    private const ulong Size = Pages * 4096UL;

    public static TheoryData<DevicePrivateDesign, bool> DesignsAndThp => new()
    {
        { DevicePrivateDesign.PhysicalAddressSpace, false },
        { DevicePrivateDesign.PhysicalAddressSpace, true },
        { DevicePrivateDesign.DeviceAddressSpace, false },
        { DevicePrivateDesign.DeviceAddressSpace, true },
    };

    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    /// <summary>Page i: one word (distinct per page, bytes all different so a misplaced byte shows) when
    /// i % 3 == 0, zeros when i % 3 == 1 (never stored as anything), varied bytes when i % 3 == 2.</summary>
    private static byte[] Pattern(int seed = 0)
    {
        var data = new byte[Size];
        for (int i = 0; i < Pages; i++)
        {
            var page = data.AsSpan(i * 4096, 4096);
            if (i % 3 == 0)
            {
                ulong w = 0x0807060504030201UL + (ulong)(i + seed) * 0x0101010101010101UL;
                for (int o = 0; o < 4096; o += 8)
                    BinaryPrimitives.WriteUInt64LittleEndian(page[o..], w);
            }
            else if (i % 3 == 2)
            {
                for (int o = 0; o < 4096; o += 4)
                    BinaryPrimitives.WriteInt32LittleEndian(page[o..], o * 31 + i + seed);
            }
        }
        return data;
    }

    private const int WordPages = (Pages + 2) / 3;

    private static long SameFilled(Machine m) => m.Kernel.Memmap.Data.SameFilledPages;

    private static (Machine M, Process P, ulong Addr, byte[] Data) Setup(DevicePrivateDesign design, bool thp)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.MapThp(p, (int)(Size / MmTestHelpers.PmdSize));
        if (!thp)
            Assert.Equal(Errno.None, p.Madvise(a, Size, Advice.NoHugePage));
        var data = Pattern();
        p.Write(a, data);
        return (m, p, a, data);
    }

    private static void AssertReads(Process p, ulong a, byte[] want)
    {
        var got = new byte[want.Length];
        p.Read(a, got);
        Assert.True(want.AsSpan().SequenceEqual(got), "the bytes read back differ from those written");
    }

    [Fact]
    public void AWholePageOfOneWordKeepsTheWordAndAPartialWriteMaterialisesIt()
    {
        using var m = new Machine(new MachineConfig());
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.Map(p, 4096);
        var page = new byte[4096];
        for (int o = 0; o < 4096; o += 8)
            BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(o), 0x1122334455667788UL);
        p.Write(a, page);
        Assert.Equal(1, SameFilled(m));
        // Unaligned reads see the right bytes of the word.
        var part = new byte[13];
        p.Read(a + 4091 - 13, part);
        Assert.Equal(page.AsSpan(4091 - 13, 13).ToArray(), part);
        // A one-byte store is not a whole-page store: the bytes are materialised with the word.
        p.Write(a + 5, [0xEE]);
        page[5] = 0xEE;
        Assert.Equal(0, SameFilled(m));
        AssertReads(p, a, page);
        // Storing a whole same-filled page over bytes gives the bytes back for the word.
        page[5] = 0x33;
        p.Write(a, page);
        Assert.Equal(1, SameFilled(m));
        AssertReads(p, a, page);
    }

    [Fact]
    public void AWholePageOfZerosHoldsNothing()
    {
        using var m = new Machine(new MachineConfig());
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.Map(p, 4096);
        p.Write(a, Enumerable.Repeat((byte)7, 4096).ToArray());
        long slots = m.Kernel.Memmap.Data.SlotsInUse;
        Assert.Equal(1, SameFilled(m));
        p.Write(a, new byte[4096]);
        Assert.Equal(0, SameFilled(m));
        Assert.Equal(slots, m.Kernel.Memmap.Data.SlotsInUse);
        AssertReads(p, a, new byte[4096]);
    }

    [Theory]
    [MemberData(nameof(DesignsAndThp))]
    public void MigrationBothWaysKeepsEveryByteAndTheWords(DevicePrivateDesign design, bool thp)
    {
        var (m, p, a, data) = Setup(design, thp);
        using (m)
        {
            Assert.Equal(WordPages, SameFilled(m));
            using var dev = p.OpenDmirror(0);
            var mirror = new byte[Size];
            var r = dev.MigrateToDevice(a, Pages, mirror);
            Assert.Equal(Errno.None, r.Error);
            Assert.True(data.AsSpan().SequenceEqual(mirror), "MIGRATE_TO_DEV returned other bytes");
            // The device's backing pages hold the words; the system pages were freed with theirs.
            Assert.Equal(WordPages, SameFilled(m));
            Assert.Equal(Errno.None, dev.MigrateToSystem(a, Pages).Error);
            Assert.Equal(WordPages, SameFilled(m));
            AssertReads(p, a, data);
        }
    }

    [Theory]
    [MemberData(nameof(DesignsAndThp))]
    public void ACpuFaultOnDeviceMemoryMigratesTheWordsBackToRam(DevicePrivateDesign design, bool thp)
    {
        var (m, p, a, data) = Setup(design, thp);
        using (m)
        {
            using var dev = p.OpenDmirror(0);
            Assert.Equal(Errno.None, dev.MigrateToDevice(a, Pages, new byte[Size]).Error);
            long toRam = m.VmStat["device_migrate_to_ram"];
            AssertReads(p, a, data);   // migrate_to_ram from the CPU faults
            Assert.True(m.VmStat["device_migrate_to_ram"] > toRam);
            Assert.Equal(WordPages, SameFilled(m));
        }
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void AFolioCopyOfBytesThatAreOneWordKeepsOnlyTheWord(DevicePrivateDesign design)
    {
        // Pages held as bytes whose 4 KiB are nevertheless one word: the THP copy to the device and back
        // finds them after copying and keeps the word; the other pages keep their bytes.
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.MapThp(p, 1);
        var data = new byte[MmTestHelpers.PmdSize];
        for (int i = 0; i < data.Length; i += 4)
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(i), i);
        p.Write(a, data);
        const int Pages = 512;
        for (int i = 0; i < Pages; i += 2)
        {
            // A whole same-filled page stored as one word, then one byte changed and changed back:
            // the bytes are materialised and stay so, though they are one word again.
            var page = data.AsSpan(i * 4096, 4096);
            for (int o = 0; o < 4096; o += 8)
                BinaryPrimitives.WriteUInt64LittleEndian(page[o..], 0x0102030405060708UL * (ulong)(i + 1));
            p.Write(a + (ulong)i * 4096, page);
            p.Write(a + (ulong)i * 4096 + 3, [0xEE]);
            p.Write(a + (ulong)i * 4096 + 3, page.Slice(3, 1));
        }
        Assert.Equal(0, SameFilled(m));
        AssertReads(p, a, data);
        using var dev = p.OpenDmirror(0);
        var mirror = new byte[data.Length];
        Assert.Equal(Errno.None, dev.MigrateToDevice(a, Pages, mirror).Error);
        Assert.True(data.AsSpan().SequenceEqual(mirror), "MIGRATE_TO_DEV returned other bytes");
        Assert.Equal(Pages / 2, SameFilled(m));
        Assert.Equal(Errno.None, dev.MigrateToSystem(a, Pages).Error);
        Assert.Equal(Pages / 2, SameFilled(m));
        AssertReads(p, a, data);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DmirrorWriteAndReadMoveBothRepresentationsExactly(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.Map(p, Size);
        using var dev = p.OpenDmirror(0);
        var data = Pattern(seed: 5);
        Assert.Equal(Errno.None, dev.Write(a, Pages, data).Error);
        Assert.Equal(WordPages, SameFilled(m));
        var back = new byte[Size];
        Assert.Equal(Errno.None, dev.Read(a, Pages, back).Error);
        Assert.True(data.AsSpan().SequenceEqual(back), "dmirror READ returned other bytes");
        AssertReads(p, a, data);
    }

    [Theory]
    [MemberData(nameof(DesignsAndThp))]
    public void ForkAndCowCopyTheWordAndAChildWriteMaterialisesOnlyTheChildsPage(DevicePrivateDesign design, bool thp)
    {
        var (m, p, a, data) = Setup(design, thp);
        using (m)
        {
            var child = p.Fork();
            // A partial store in the child: COW copies the word, then the store materialises it.
            child.Write(a + 8 + 4096 * 3, [0xAB, 0xCD]);
            var childData = (byte[])data.Clone();
            childData[8 + 4096 * 3] = 0xAB;
            childData[9 + 4096 * 3] = 0xCD;
            AssertReads(child, a, childData);
            AssertReads(p, a, data);
            child.Dispose();
            AssertReads(p, a, data);
        }
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void SplittingATransparentHugePageKeepsEachPagesRepresentation(DevicePrivateDesign design)
    {
        var (m, p, a, data) = Setup(design, thp: true);
        using (m)
        {
            Assert.Equal(2, m.VmStat["nr_anon_transparent_hugepages"]);
            // Unmapping one 4 KiB page in the middle of a PMD splits it.
            Assert.Equal(Errno.None, p.Munmap(a + 4096 * 7, 4096));
            var want = (byte[])data.Clone();
            var rest = new byte[Size - 4096 * 8];
            p.Read(a + 4096 * 8, rest);
            Assert.True(want.AsSpan(4096 * 8).SequenceEqual(rest));
            var head = new byte[4096 * 7];
            p.Read(a, head);
            Assert.True(want.AsSpan(0, 4096 * 7).SequenceEqual(head));
            Assert.Equal(WordPages - (7 % 3 == 0 ? 1 : 0), SameFilled(m));
        }
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void AP2pReadAndWriteOfDeviceMemoryMoveBothRepresentationsExactly(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        ulong a = MmTestHelpers.Map(p, Size);
        using var owner = p.OpenDmirror(0);
        using var importer = p.OpenDmirror(1);
        var data = Pattern(seed: 9);
        p.Write(a, data);
        Assert.Equal(Errno.None, owner.MigrateToDevice(a, Pages, new byte[Size]).Error);
        Assert.Equal(Errno.None, importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var buf = new byte[Size];
        Assert.Equal(Errno.None, importer.Read(a, Pages, buf).Error);
        Assert.True(data.AsSpan().SequenceEqual(buf), "the P2P read returned other bytes");
        var written = Pattern(seed: 11);
        Assert.Equal(Errno.None, importer.Write(a, Pages, written).Error);
        Assert.Equal(WordPages, SameFilled(m));
        AssertReads(p, a, written);
    }
}
