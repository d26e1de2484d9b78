using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

public class StressTests
{
    /// <summary>Four threads on one mm: each faults, mprotects and unmaps/remaps its own region and its
    /// own slice of a shared THP region, checking its data as it goes; the checker runs after every
    /// operation and once more at the end.</summary>
    [Fact]
    public void FourThreadsFaultMprotectAndRemapOneProcess()
    {
        const int threads = 4, iterations = 150, slicePages = 128, ownPages = 32;
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong shared = MapThp(p);   // 512 pages: one 128-page slice per thread
        p.WriteInt32(shared, 0);
        var errors = new List<Exception>();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                var rng = new Random(1000 + t);
                ulong own = Map(p, ownPages * PageSize);
                var ownData = new int[ownPages];
                var sliceData = new int[slicePages];
                var sliceProt = new Prot[slicePages];
                Array.Fill(sliceProt, Rw);
                ulong slice = shared + (ulong)t * slicePages * PageSize;
                for (int i = 0; i < iterations; i++)
                {
                    int page = rng.Next(ownPages);
                    int s = rng.Next(slicePages);
                    int v = rng.Next();
                    switch (rng.Next(6))
                    {
                        case 0:
                            p.WriteInt32(own + (ulong)page * PageSize, v);
                            ownData[page] = v;
                            break;
                        case 1:
                            if (sliceProt[s] == Rw)
                            {
                                p.WriteInt32(slice + (ulong)s * PageSize + 4, v);
                                sliceData[s] = v;
                            }
                            else
                            {
                                Assert.Throws<SegmentationFaultException>(() => p.WriteInt32(slice + (ulong)s * PageSize + 4, v));
                            }
                            break;
                        case 2:
                            {
                                int n = 1 + rng.Next(8);
                                n = Math.Min(n, slicePages - s);
                                var prot = rng.Next(2) == 0 ? Prot.Read : Rw;
                                Assert.Equal(Errno.None, p.Mprotect(slice + (ulong)s * PageSize, (ulong)n * PageSize, prot));
                                Array.Fill(sliceProt, prot, s, n);
                                break;
                            }
                        case 3:
                            Assert.Equal(Errno.None, p.Munmap(own, ownPages * PageSize));
                            own = Map(p, ownPages * PageSize);
                            Array.Clear(ownData);
                            break;
                        case 4:
                            {
                                Assert.Equal(Errno.None, p.Mremap(own, ownPages * PageSize, ownPages * PageSize, MremapFlags.MayMove | MremapFlags.DontUnmap, 0, out var moved));
                                Assert.Equal(0, p.ReadInt32(own + (ulong)page * PageSize));
                                Assert.Equal(Errno.None, p.Munmap(own, ownPages * PageSize));
                                own = moved;
                                break;
                            }
                        default:
                            Assert.Equal(ownData[page], p.ReadInt32(own + (ulong)page * PageSize));
                            Assert.Equal(sliceData[s], p.ReadInt32(slice + (ulong)s * PageSize + 4));
                            break;
                    }
                }
                for (int i = 0; i < ownPages; i++)
                    Assert.Equal(ownData[i], p.ReadInt32(own + (ulong)i * PageSize));
                for (int i = 0; i < slicePages; i++)
                    Assert.Equal(sliceData[i], p.ReadInt32(slice + (ulong)i * PageSize + 4));
            }
            catch (Exception e)
            {
                lock (errors)
                    errors.Add(e);
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        Assert.Empty(errors);
        m.CheckInvariants();
    }
}
