export async function openTui(_o: { home?: string }): Promise<number> { return 0; }
