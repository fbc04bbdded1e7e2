/** The 25 genres of the dataset, in the order of its CSV columns and of every model output. */
export const GENRES = [
  'Action', 'Adventure', 'Animation', 'Biography', 'Comedy', 'Crime', 'Documentary', 'Drama',
  'Family', 'Fantasy', 'History', 'Horror', 'Music', 'Musical', 'Mystery', 'N/A', 'News',
  'Reality-TV', 'Romance', 'Sci-Fi', 'Short', 'Sport', 'Thriller', 'War', 'Western',
] as const;

export type Genre = (typeof GENRES)[number];
export const NUM_GENRES = GENRES.length;

/** Genres whose 0/1 label is 1, in genre order. */
export function genresOf(labels: ArrayLike<number>): Genre[] {
  return GENRES.filter((_, i) => labels[i] === 1);
}
