/**
 * The minor unit of each ISO 4217 currency: the catalog checks that fees are expressible in
 * it, rating rounds totals to it.
 */
/** ISO 4217 currencies whose minor unit is not the usual hundredth. */
const MINOR_DIGITS: Readonly<Record<string, number>> = {
  // no minor unit
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  // thousandths
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  // ten-thousandths
  CLF: 4,
  UYW: 4,
};

/** Fractional digits of the currency's minor unit (2 unless ISO 4217 says otherwise). */
export function minorDigits(currency: string): number {
  return MINOR_DIGITS[currency] ?? 2;
}
