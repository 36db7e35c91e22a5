using System.Buffers.Binary;
using System.Numerics;

namespace CloudMirrorFs.Storage;

/// <summary>
/// CRC-32C (Castagnoli) over a span. System.IO.Hashing 10.0 ships CRC-32 (IEEE) but not CRC-32C, so this uses the
/// runtime's <see cref="BitOperations.Crc32C(uint, ulong)"/>, which is the SSE4.2/ARMv8 CRC instruction where the CPU has
/// it and a table fallback where not.
/// </summary>
public static class Crc32C
{
    /// <summary>Computes the CRC-32C of <paramref name="data"/>, continuing from <paramref name="seed"/> (0 to start).</summary>
    public static uint Compute(ReadOnlySpan<byte> data, uint seed = 0)
    {
        uint crc = ~seed;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return ~crc;
    }
}
