using System.Text;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class Crc32CTests
{
    [TestMethod]
    public void Compute_TheStandardCheckValue()
    {
        // RFC 3720 (iSCSI), B.4: CRC-32C of "123456789" is 0xE3069283.
        Assert.AreEqual(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.AreEqual(0u, Crc32C.Compute([]));
        // 32 bytes of zeros, and of 0xFF (RFC 3720, B.4).
        Assert.AreEqual(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.AreEqual(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
    }

    [TestMethod]
    public void Compute_LanesJoined_EqualTheSerialDefinition()
    {
        // Lengths around every chunk boundary (three lanes) and odd tails, at odd offsets, from random seeds.
        var random = new Random(20261123);
        byte[] data = new byte[5 * 3 * Crc32C.Lane + 100];
        random.NextBytes(data);
        int chunk = 3 * Crc32C.Lane;
        var lengths = new List<int> { 0, 1, 7, 8, 9, 4095, 4096, chunk - 1, chunk, chunk + 1, chunk + 7, 2 * chunk, 2 * chunk + 13, 5 * chunk };
        for (int i = 0; i < 40; i++)
        {
            lengths.Add(random.Next(0, data.Length - 64));
        }
        foreach (int length in lengths)
        {
            int offset = random.Next(0, 64);
            uint seed = (uint)random.Next();
            ReadOnlySpan<byte> span = data.AsSpan(offset, Math.Min(length, data.Length - offset));
            Assert.AreEqual(Crc32C.ComputeSerial(span, seed), Crc32C.Compute(span, seed), $"length {span.Length} at offset {offset}");
        }
    }

    [TestMethod]
    public void Compute_InPieces_EqualsInOne()
    {
        byte[] data = new byte[3 * 3 * Crc32C.Lane + 555];
        new Random(5).NextBytes(data);
        uint whole = Crc32C.Compute(data);
        foreach (int cut in new[] { 1, 4096, 3 * Crc32C.Lane, 20_000, data.Length - 1 })
        {
            Assert.AreEqual(whole, Crc32C.Compute(data.AsSpan(cut), Crc32C.Compute(data.AsSpan(0, cut))), $"cut at {cut}");
        }
    }
}
